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
    table = results.format_table({"01": {"a": 0.123456}})
    assert "0.1235" in table and "notebook" in table


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
