"""Shared fixtures. Each notebook is executed once per session at the budget of `MODLEARN_BUDGET`
(`make test` sets `smoke`; `MODLEARN_BUDGET=cpu` checks the claims at the new user's default)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pytest

# re-exported for the tests that still write `from conftest import ...`; new code imports from `support`
from support import ROOT, TEST_BUDGET, TUTORIALS, InterruptAt  # noqa: F401


def pytest_configure(config) -> None:
    """Under pytest-xdist (`make test`: -n 2) each worker, and every kernel it starts, uses its share of
    the CPUs: more torch threads than cores makes every thread hand-off wait for a time slice."""
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        import torch

        from modlearn.series import threads_beside

        os.environ["MODLEARN_THREADS"] = str(threads_beside(int(workers)))
        torch.set_num_threads(int(os.environ["MODLEARN_THREADS"]))


def pytest_collection_modifyitems(config, items) -> None:
    """Every test that executes a tutorial notebook (through `run_notebook`) is marked `notebook` and
    grouped by its notebook (`--dist loadgroup` keeps one notebook's runs on one worker, where the
    session cache shares them); one whose notebook's claims time code is marked `alone`."""
    from modlearn.series import runs_alone

    for item in items:
        if "run_notebook" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.notebook)
            path = getattr(item, "callspec", None) and item.callspec.params.get("path")
            stem = Path(path).stem if path else item.name
            item.add_marker(pytest.mark.xdist_group(stem))
            if path and runs_alone(stem):
                item.add_marker(pytest.mark.alone)


@pytest.fixture(scope="session")
def run_notebook(tmp_path_factory):
    """`run_notebook(stem, **parameters) -> recorded results`, cached per (stem, parameters);
    `run_notebook.executed(stem, **parameters)` is the path of that executed notebook. A kernel that
    sat idle mid-cell (`KernelIdleError`, seen on a heavily shared machine) runs the notebook once more,
    as `make run` does, with a warning in the test summary."""
    from modlearn.series import KernelIdleError, execute_notebook

    cache: dict = {}
    folders: dict = {}
    out = tmp_path_factory.mktemp("executed")

    def execute(stem: str, folder: Path, parameters: dict):
        try:
            return execute_notebook(TUTORIALS / f"{stem}.ipynb", folder, TEST_BUDGET, parameters)
        except KernelIdleError as err:
            warnings.warn(f"{err}; running {stem} once more", stacklevel=1)
            return execute_notebook(TUTORIALS / f"{stem}.ipynb", folder, TEST_BUDGET, parameters)

    def run(stem: str, **parameters):
        key = (stem, tuple(sorted(parameters.items())))
        if key not in cache:
            folders[key] = out / f"{stem}-{len(cache)}"
            cache[key] = execute(stem, folders[key], parameters)
        return cache[key]

    def executed(stem: str, **parameters) -> Path:
        run(stem, **parameters)
        return folders[(stem, tuple(sorted(parameters.items())))] / f"{stem}.ipynb"

    run.executed = executed
    return run


@pytest.fixture
def mnist_root() -> Path:
    """The folder holding MNIST (`MODLEARN_DATA`); the test is skipped when it is absent."""
    from modlearn.data import mnist_on_disk

    root = os.environ.get("MODLEARN_DATA")
    if not root or not mnist_on_disk(root):
        pytest.skip("MNIST files not found: set MODLEARN_DATA (e.g. ../shared/data)")
    return Path(root)


@pytest.fixture
def one_torch_thread():
    """Tiny networks: thread hand-offs cost far more than they save on a shared machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
