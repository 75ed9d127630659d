"""Execute every notebook of tutorials/ (at `smoke` unless MODLEARN_BUDGET says otherwise) and assert
the claims its text makes.

The claims live in one place, `modlearn.claims.CLAIMS` (also printed with verdicts by `make run`).
A new notebook is picked up automatically: it must run and record at least one result.
"""

import os

import pytest
from conftest import TEST_BUDGET, TUTORIALS

from modlearn.checks import PASSED, exercises_of
from modlearn.claims import CLAIMS, verdicts
from modlearn.series import notebooks


@pytest.mark.parametrize("path", notebooks(TUTORIALS), ids=lambda p: p.stem)
def test_notebook_runs_and_its_claims_hold(path, run_notebook):
    results = run_notebook(path.stem)
    assert results, f"{path.name} recorded no result: call ml.record(...) for its claims"
    failed = [text for text, held in verdicts(path.stem, results) if not held]
    assert not failed, (
        f"{path.name}: claims that did not hold (or were not recorded) {failed}; recorded {results}"
    )
    datasets = {key: value for key, value in results.items() if key.endswith("dataset")}
    if TEST_BUDGET == "smoke" or not os.environ.get("MODLEARN_DATA"):
        assert all(value == "digits" for value in datasets.values()), (
            f"at smoke, or with MODLEARN_DATA unset, a notebook runs on the embedded digits: {datasets}"
        )


def test_every_notebook_has_claims():
    assert sorted(CLAIMS) == [path.stem for path in notebooks(TUTORIALS)]


def test_every_notebook_has_a_parameters_cell_and_is_cleared():
    import nbformat

    for path in notebooks(TUTORIALS):
        nb = nbformat.read(path, as_version=4)
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert "parameters" in first_code.metadata.get("tags", []), (
            f"{path.name}: first code cell is not tagged"
        )
        assert 'BUDGET = "cpu"' in first_code.source, f'{path.name}: BUDGET must default to "cpu"'
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert all(
            not c.get("outputs") and c.get("execution_count") is None
            for c in nb.cells
            if c.cell_type == "code"
        ), f"{path.name} is saved with outputs"


def test_notebook_01_trains_on_real_mnist_when_present(run_notebook, mnist_root):
    results = run_notebook("01_e2e_backprop", DATASET="mnist")
    assert results["dataset"] == "mnist"
    assert results["cnn_test_acc"] > 0.85


@pytest.mark.parametrize(
    "path", [p for p in notebooks(TUTORIALS) if exercises_of(p.stem)], ids=lambda p: p.stem
)
def test_notebook_runs_solved_and_every_exercise_passes(path, run_notebook):
    """With `SOLUTIONS = True` every stub is replaced by its solution and every checker passes;
    the run as shipped (stubs unsolved) is `test_notebook_runs_and_its_claims_hold`."""
    solved = run_notebook(path.stem, SOLUTIONS=True)
    shipped = run_notebook(path.stem)
    for exercise in exercises_of(path.stem):
        key = f"exercise_{exercise.name}"
        assert solved.get(key) == PASSED, f"{path.name} solved: {exercise.name} -> {solved.get(key)}"
        assert shipped.get(key) == "not implemented", (
            f"{path.name} as shipped: {exercise.name} -> {shipped.get(key)}"
        )
