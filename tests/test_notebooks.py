"""Execute every notebook of tutorials/ (at `smoke` unless MODLEARN_BUDGET says otherwise) and assert
the claims its text makes.

The claims live in one place, `modlearn.claims.CLAIMS` (also printed with verdicts by `make run`).
A new notebook is picked up automatically: it must run and record at least one result.
"""

import os

import pytest
from support import TEST_BUDGET, TUTORIALS

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
    """The parameters cell comes right after the install cell (`test_platforms.py`), before anything runs."""
    import nbformat

    for path in notebooks(TUTORIALS):
        nb = nbformat.read(path, as_version=4)
        parameters = [c for c in nb.cells if c.cell_type == "code"][1]
        assert "parameters" in parameters.metadata.get("tags", []), (
            f"{path.name}: the second code cell (after the install cell) is not tagged parameters"
        )
        assert 'BUDGET = "cpu"' in parameters.source, f'{path.name}: BUDGET must default to "cpu"'
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


# What a student should never meet under a cell of a clean run: a bare value printed because the cell
# ended with an expression (e.g. `ml.record(...)` returns what it stored), or a warning.
WARNING_MARKERS = ("Warning:", "warnings.warn", "FutureWarning", "DeprecationWarning")


def stray_outputs(nb) -> list[str]:
    """`"cell N: ..."` for every output of the executed notebook `nb` that is a bare text value (an
    `execute_result` with only `text/plain`: figures, widgets and HTML tables are intended) or text
    on stderr that reads as a warning."""
    found = []
    for index, cell in enumerate(nb.cells):
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            if output.output_type == "execute_result" and set(output.data) == {"text/plain"}:
                found.append(f"cell {index}: printed value {output.data['text/plain'][:80]!r}")
            elif output.output_type == "stream" and output.name == "stderr":
                if any(marker in output.text for marker in WARNING_MARKERS):
                    found.append(f"cell {index}: warning {output.text.strip()[:160]!r}")
    return found


def test_stray_outputs_finds_a_printed_value_and_a_warning():
    import nbformat

    nb = nbformat.v4.new_notebook()
    value = nbformat.v4.new_code_cell("ml.record('x', 1)")
    value.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "1"}, execution_count=1)]
    warned = nbformat.v4.new_code_cell("torch.empty(0)")
    warned.outputs = [nbformat.v4.new_output("stream", name="stderr", text="x.py:3: UserWarning: no-op\n")]
    figure = nbformat.v4.new_code_cell("fig")
    figure.outputs = [
        nbformat.v4.new_output("execute_result", data={"text/plain": "<Figure>", "image/png": "iVBO"})
    ]
    progress = nbformat.v4.new_code_cell("fit(...)")
    progress.outputs = [nbformat.v4.new_output("stream", name="stderr", text="fit: 16/16 optimizer steps\n")]
    nb.cells = [value, warned, figure, progress]
    assert stray_outputs(nb) == ["cell 0: printed value '1'", "cell 1: warning 'x.py:3: UserWarning: no-op'"]


@pytest.mark.parametrize("path", notebooks(TUTORIALS), ids=lambda p: p.stem)
def test_a_clean_run_shows_no_warning_and_no_stray_value(path, run_notebook):
    import nbformat

    nb = nbformat.read(run_notebook.executed(path.stem), as_version=4)
    assert not stray_outputs(nb), f"{path.name}: {stray_outputs(nb)}"


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
