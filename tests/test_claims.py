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
        }
    }
    found = dict(verdicts("01_e2e_backprop", results["01_e2e_backprop"]))
    assert found["hand-written backprop equals autograd"] is True
    assert found["the MLP learns"] is False
    text = format_verdicts(results)
    assert "[did NOT hold] the MLP learns" in text
    assert text.endswith("4 claims held, 1 did not, 0 not recorded")


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
