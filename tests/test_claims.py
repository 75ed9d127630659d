"""The claims registry: verdicts, missing values, and the text `make run` prints."""

from modlearn.claims import CLAIMS, Claim, format_verdicts, verdicts


def test_a_claim_holds_fails_or_is_not_recorded():
    claim = Claim("x beats y", lambda r: r["x"] > r["y"])
    assert claim.verdict({"x": 2, "y": 1}) is True
    assert claim.verdict({"x": 1, "y": 2}) is False
    assert claim.verdict({"x": 1}) is None


def test_verdicts_and_their_summary():
    results = {
        "01_e2e_backprop": {
            "budget": "cpu",
            "dataset": "digits",
            "backprop_max_abs_error": 1e-16,
            "mlp_test_acc": 0.5,
            "cnn_test_acc": 0.96,
            "mlp_params": 2000,
            "cnn_params": 1000,
            "baseline_acc": 0.96,
            "baseline_model": "CNN",
            "activation_bytes_batch32": 1000,
            "activation_bytes_batch512": 16000,
            "weight_bytes": 5000,
        }
    }
    found = dict(verdicts("01_e2e_backprop", results["01_e2e_backprop"]))
    assert found["hand-written backprop equals autograd"] is True
    assert found["the MLP learns"] is False
    text = format_verdicts(results)
    assert "[did NOT hold] the MLP learns" in text
    assert text.endswith("5 claims held, 1 did not, 0 not recorded")


def test_every_claim_has_text_and_a_check():
    for notebook, claims in CLAIMS.items():
        assert claims, notebook
        assert all(c.text and callable(c.check) for c in claims), notebook


def test_thresholds_follow_the_run():
    from modlearn.claims import for_run

    assert for_run({"budget": "smoke", "dataset": "digits"}, smoke=1, cpu=2, mnist=3) == 1
    assert for_run({"budget": "cpu", "dataset": "digits"}, smoke=1, cpu=2, mnist=3) == 2
    assert for_run({"budget": "cpu", "dataset": "mnist"}, smoke=1, cpu=2, mnist=3) == 3
    assert for_run({"budget": "gpu", "dataset": "mnist"}, smoke=1, cpu=2) == 2
    assert for_run({"budget": "gpu", "dataset": "digits"}, smoke=1, cpu=2, gpu=4) == 4


def test_a_claim_shows_the_numbers_it_read():
    claim = Claim("x beats y", lambda r: r["x"] > r["y"] if r["budget"] == "cpu" else False)
    assert claim.evidence({"budget": "cpu", "x": 2.0, "y": 1.0, "z": 9}) == {"x": 2.0, "y": 1.0}
    assert claim.evidence({"budget": "cpu", "x": 2.0}) == {"x": 2.0}, "what was read before a missing value"
    assert "mlp_test_acc 0.5" in format_verdicts({"01_e2e_backprop": {"budget": "cpu", "mlp_test_acc": 0.5}})


def test_key_results_render_from_the_run_and_name_a_missing_value():
    from modlearn.claims import KEY_RESULTS, key_results

    assert set(KEY_RESULTS) == set(CLAIMS)
    line = key_results(
        "01_e2e_backprop", {"backprop_max_abs_error": 2e-16, "mlp_test_acc": 0.9, "cnn_test_acc": 0.97}
    )
    assert "2.0e-16" in line and "MLP 0.900, CNN 0.970" in line
    assert key_results("01_e2e_backprop", {"mlp_test_acc": 0.9}) == "not recorded: backprop_max_abs_error"


def test_a_value_undefined_in_a_run_reads_as_nan_in_a_paired_verdict():
    """`record` stores NaN as None (JSON has no NaN); a seed whose module never reached the target."""
    from modlearn.claims import paired_verdict, undefined_as_nan

    assert undefined_as_nan(0.25) == 0.25
    assert paired_verdict([undefined_as_nan(None), 0.4], [0.5, 0.6]) == "not distinguishable"
    assert paired_verdict([0.3, 0.4], [0.5, 0.6]) == "smaller"
