"""Execute every notebook of tutorials/ at BUDGET="smoke" and assert the claims it records.

A new notebook is picked up automatically: it must run and record at least one result.
Notebook-specific claims (with margins measured at `smoke`) live in CLAIMS.
"""
import pytest

from conftest import TUTORIALS
from modlearn.series import notebooks

CLAIMS = {
    "00_tour": [
        ("reports the device and trains", lambda r: r["device"] in ("cpu", "cuda", "mps") and r["tour_mlp_test_acc"] > 0.8),
        ("smoke runs on the embedded digits", lambda r: r["dataset"] == "digits"),
    ],
    "01_e2e_backprop": [
        ("hand-written backprop equals autograd", lambda r: r["backprop_max_abs_error"] < 1e-10),
        ("MLP on digits >= 0.93", lambda r: r["mlp_test_acc"] >= 0.93),
        ("CNN on digits >= 0.95", lambda r: r["cnn_test_acc"] >= 0.95),
        ("baseline is the better model", lambda r: r["baseline_acc"] == max(r["mlp_test_acc"], r["cnn_test_acc"])),
    ],
}


@pytest.mark.parametrize("path", notebooks(TUTORIALS), ids=lambda p: p.stem)
def test_notebook_runs_and_its_claims_hold(path, run_notebook):
    results = run_notebook(path.stem)
    assert results, f"{path.name} recorded no result: call ml.record(...) for its claims"
    failed = [text for text, claim in CLAIMS.get(path.stem, []) if not claim(results)]
    assert not failed, f"{path.name}: claims failed {failed}; recorded {results}"


def test_every_notebook_has_a_parameters_cell_and_is_cleared():
    import nbformat

    for path in notebooks(TUTORIALS):
        nb = nbformat.read(path, as_version=4)
        first_code = next(c for c in nb.cells if c.cell_type == "code")
        assert "parameters" in first_code.metadata.get("tags", []), f"{path.name}: first code cell is not tagged"
        assert 'BUDGET = "cpu"' in first_code.source, f"{path.name}: BUDGET must default to \"cpu\""
        assert nb.metadata["kernelspec"]["name"] == "python3"
        assert all(not c.get("outputs") and c.get("execution_count") is None
                   for c in nb.cells if c.cell_type == "code"), f"{path.name} is saved with outputs"


def test_notebook_01_trains_on_real_mnist_when_present(run_notebook, mnist_root):
    results = run_notebook("01_e2e_backprop", DATASET="mnist")
    assert results["dataset"] == "mnist"
    assert results["cnn_test_acc"] > 0.85
