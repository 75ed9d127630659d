"""Run the series: every notebook of one or more passes (`SeriesRun`: e.g. the embedded digits and
MNIST), `jobs` notebooks at a time in one pool, then the notebooks whose claims time code one at a time
with the machine to themselves (`runs_alone`)."""

from __future__ import annotations

import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from ..claims import CLAIMS
from ..env import available_cpus
from . import execute

# what one notebook's execution gives back: its results or None, the error if it failed, whether it ran twice
Outcome = tuple["execute.NotebookResults | None", str, bool]


@dataclass(frozen=True)
class SeriesRun:
    """One pass over the notebooks `paths`: executed into `out`, with the environment variables
    `environment` (None unsets one: `{"MODLEARN_DATA": None}` is the embedded digits) in its
    kernels; `label` names it in the progress lines. `reference`: seconds per notebook stem from an
    earlier run, to start the longest first."""

    paths: tuple[Path, ...]
    out: str
    label: str = ""
    environment: dict[str, str | None] = field(default_factory=dict)
    reference: dict[str, float] = field(default_factory=dict)


def runs_alone(stem: str) -> bool:
    """Whether a claim of notebook `stem` compares wall-clock times (`Claim.timed`): `--jobs` never
    runs it beside another notebook."""
    return any(claim.timed for claim in CLAIMS.get(stem, []))


def reference_seconds(results_json: str | Path | None) -> dict[str, float]:
    """Seconds per notebook stem recorded in an earlier run's `results.json` ({} when it is absent or
    unreadable: the order then is the series order)."""
    try:
        notebooks = json.loads(Path(results_json).read_text())["notebooks"]
        return {stem: float(entry["seconds"]) for stem, entry in notebooks.items() if entry.get("seconds")}
    except (TypeError, OSError, ValueError, KeyError):
        return {}


def threads_beside(jobs: int) -> int:
    """Torch threads for a notebook that shares the machine with `jobs - 1` others: its share of the
    CPUs. More threads than cores makes each thread hand-off wait for a time slice (a 1 s `fit` took
    80 s with two 2-thread kernels on 2 cores)."""
    return max(1, available_cpus() // jobs)


def run_series(
    paths: list[Path], out: str, budget: str, jobs: int = 1
) -> tuple[dict[str, execute.NotebookResults], list[str], list[str]]:
    """Execute the notebooks `paths` at `budget` into `out` in this environment: (results by stem in
    series order, failed names, names run twice). See `run_all`."""
    return run_all([SeriesRun(tuple(paths), out)], budget, jobs)[0]


def run_all(
    runs: list[SeriesRun], budget: str, jobs: int = 1
) -> list[tuple[dict[str, execute.NotebookResults], list[str], list[str]]]:
    """Execute every run's notebooks at `budget`; per run: (results by stem in series order, failed
    names, names run twice). With `jobs` > 1 the notebooks of all runs that do not `runs_alone` share
    one pool, `jobs` at a time and the longest (by `reference`) first, each in its own worker process
    (so its peak memory is its own kernel's tree) and with `threads_beside(jobs)` torch threads
    (`MODLEARN_THREADS`); then the timed ones one at a time with the machine to themselves."""
    tasks = [(run, nb) for run in runs for nb in run.paths]
    shared = [task for task in tasks if jobs > 1 and not runs_alone(task[1].stem)]
    shared.sort(key=lambda task: -task[0].reference.get(task[1].stem, 0.0))
    outcomes: dict[tuple[int, Path], Outcome] = {}
    if shared:
        threads = {"MODLEARN_THREADS": str(threads_beside(jobs))}
        print(f"running {len(shared)} notebooks at budget={budget}, {jobs} at a time", flush=True)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(jobs, len(shared)), mp_context=spawn) as pool:
            futures = {
                pool.submit(_run_one, nb, run.out, budget, {**run.environment, **threads}): (run, nb)
                for run, nb in shared
            }
            for future in as_completed(futures):
                run, nb = futures[future]
                outcomes[id(run), nb] = _report(nb, run, future.result())
    for run, nb in tasks:
        if (id(run), nb) not in outcomes:
            print(f"running {nb.name} at budget={budget} (alone) ...", flush=True)
            outcomes[id(run), nb] = _report(nb, run, _run_one(nb, run.out, budget, run.environment))
    return [_collect(run, outcomes) for run in runs]


def _collect(run: SeriesRun, outcomes: dict[tuple[int, Path], Outcome]) -> tuple:
    mine = [(nb, outcomes[id(run), nb]) for nb in run.paths]
    results = {nb.stem: outcome[0] for nb, outcome in mine if outcome[0] is not None}
    failed = [nb.name for nb, outcome in mine if outcome[0] is None]
    retried = [nb.name for nb, outcome in mine if outcome[2]]
    return results, failed, retried


def _run_one(nb: Path, out: str, budget: str, environment: dict[str, str | None]) -> Outcome:
    """Execute `nb` with `environment` in its kernel; never raises."""
    try:
        with execute.kernel_environment(**environment):
            results, twice = _execute_retrying_once_if_idle(nb, out, budget)
    except Exception as err:  # report every notebook, then fail
        return None, f"{type(err).__name__}: {str(err)[:2000]}", False
    return results, "", twice


def _execute_retrying_once_if_idle(nb: Path, out: str, budget: str) -> tuple[execute.NotebookResults, bool]:
    """`execute_notebook` and whether it ran twice: a notebook whose kernel went idle mid-cell
    (`KernelIdleError`) runs once more (reported in results.json: the run is not hidden)."""
    try:
        return execute.execute_notebook(nb, out, budget), False
    except execute.KernelIdleError as err:
        print(f"  {err}\n  running {nb.name} once more (this is reported in results.json)", flush=True)
        return execute.execute_notebook(nb, out, budget), True


def _report(nb: Path, run: SeriesRun, outcome: Outcome) -> Outcome:
    results, error, _ = outcome
    where = f"{run.label}: {nb.name}" if run.label else nb.name
    if results is None:
        print(f"  {where} FAILED: {error}", flush=True)
    else:
        print(
            f"  {where} done in {results.seconds:.1f} s; peak memory of the kernel and its "
            f"processes {results.peak_tree_mb:.0f} MB",
            flush=True,
        )
    return outcome
