import json

import pytest

from modlearn import results


def test_record_and_read_back(tmp_path):
    assert results.record("some_acc", 0.5) == 0.5
    assert results.recorded()["some_acc"] == 0.5
    nb = {
        "cells": [
            {"outputs": [{"data": {results.MIME: {"a": 1}}}]},
            {"outputs": [{"data": {results.MIME: {"a": 2, "b": "x"}}}]},
        ]
    }
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    assert results.read_notebook(path) == {"a": 2, "b": "x"}


def test_seed_summary_is_the_one_rule_for_mean_and_sd_over_seeds():
    import math

    assert results.seed_summary([0.9, 0.92, 0.94]) == pytest.approx((0.92, 0.02))
    mean, sd = results.seed_summary([0.9, None, math.nan, 0.94])
    assert mean == pytest.approx(0.92) and sd == pytest.approx(0.04 / math.sqrt(2))
    assert results.seed_summary([0.9])[0] == 0.9 and math.isnan(results.seed_summary([0.9])[1])
    assert all(math.isnan(v) for v in results.seed_summary([None, math.nan]))


def test_paired_verdict_lives_in_results_and_the_claims_share_it():
    from modlearn import claims

    assert claims.paired_verdict is results.paired_verdict
    assert results.paired_verdict([0.3, 0.31], [0.5, 0.52]) == "smaller"


def test_bad_records_raise_value_error():
    with pytest.raises(ValueError, match="identifier"):
        results.record("has space", 1)
    with pytest.raises(ValueError, match="cannot record"):
        results.record("obj", object())


def test_report_fills_the_prose_from_recorded_values(capsys):
    results.record("report_test_acc", 0.91234)
    results.report("accuracy **{report_test_acc:.3f}**")
    assert capsys.readouterr().out.splitlines()[-1] == "accuracy **0.912**"
    with pytest.raises(ValueError, match="never_recorded_value"):
        results.report("{never_recorded_value:.2f}")


def test_an_undefined_value_is_recorded_as_none_and_reported_as_n_a(capsys):
    """NaN cannot go into a notebook's JSON (the kernel refuses the whole output): it is None."""
    assert results.record("undefined_sd", float("nan")) is None
    assert results.record("unbounded_ratio", float("inf")) is None
    json.dumps(results.recorded(), allow_nan=False)
    results.report("sd {undefined_sd:.3f}, ratio {unbounded_ratio:.2f}")
    assert capsys.readouterr().out.splitlines()[-1] == "sd n/a, ratio n/a"
