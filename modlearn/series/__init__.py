"""Run the tutorial series headlessly with papermill and collect what each notebook recorded (what is
written from it, results.json and the README's table, is `report.py`).

`python -m modlearn.series --budget smoke` is what `make run` calls. While a notebook runs, a
watchdog thread samples the kernel's process tree (the kernel and every process it started): its
peak memory, summed over the tree, is reported per notebook, and a kernel that uses no CPU for
`idle_timeout` seconds while a cell is still running is killed, failing that notebook with a
message that names the cell (a wait that would otherwise last until the cell timeout).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from ..claims import CLAIMS, claim_rows, format_key_results, format_verdicts
from ..env import BUDGETS
from ..results import read_notebook
from .report import (
    README_BEGIN,
    README_END,
    describe_run,
    readme_results_block,
    run_description,
    scoreboard_text,
    source_commit,
    update_readme,
    write_results,
)

__all__ = [
    "README_BEGIN",
    "README_END",
    "describe_run",
    "readme_results_block",
    "run_description",
    "scoreboard_text",
    "source_commit",
    "update_readme",
    "write_results",
]


def notebooks(folder: str | Path = "tutorials") -> list[Path]:
    """The numbered notebooks of the series, in order."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))


# seconds one cell may run at each budget before the notebook fails
CELL_TIMEOUTS = {"smoke": 300, "cpu": 1200, "gpu": 7200}
# a kernel whose process tree uses less than IDLE_CPU_FRACTION of one core for this long, while a
# cell is running, is stuck (e.g. waiting for a worker process that is gone)
IDLE_TIMEOUT_S = 120.0
IDLE_CPU_FRACTION = 0.05


class NotebookResults(dict):
    """The values a notebook recorded (a plain `dict`), `peak_tree_mb`: the peak memory of its
    kernel's process tree (kernel plus workers), summed over the processes, in MB, and `seconds`:
    the wall-clock time of the whole execution."""

    peak_tree_mb: float = 0.0
    seconds: float = 0.0


class KernelIdleError(RuntimeError):
    """A cell was still running but the kernel's processes used no CPU for the idle timeout."""


def _tree_memory_mb(process) -> float:
    """Proportional set size of `process` (its private memory plus its share of shared pages) in MB,
    from `/proc/<pid>/smaps_rollup`; the resident set where that file is unavailable."""
    try:
        with open(f"/proc/{process.pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return process.memory_info().rss / 2**20


class KernelWatch:
    """Samples, every `interval` s in a thread, the processes this one started after `start()` (the
    kernel and its descendants): peak summed memory (`peak_mb`) and CPU use. While a cell runs
    (nbclient's `on_cell_start` / `on_cell_executed` hooks), a tree that stays idle for `idle_s`
    seconds is killed and `stalled` names the cell."""

    def __init__(self, idle_s: float = IDLE_TIMEOUT_S, interval: float = 0.2) -> None:
        import psutil

        self.psutil, self.idle_s, self.interval = psutil, idle_s, interval
        self.me = psutil.Process()
        self.peak_mb, self.stalled = 0.0, None
        self.cell: tuple[int, str] | None = None
        self._cpu: dict[int, float] = {}
        self._busy, self._last_active = 0.0, time.monotonic()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="kernel-watch", daemon=True)

    def __enter__(self) -> KernelWatch:
        self._before = {p.pid for p in self.me.children(recursive=True)}
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def on_cell_start(self, cell, cell_index: int, **_) -> None:
        first_line = (cell.source.strip().splitlines() or [""])[0]
        self.cell, self._last_active = (cell_index, first_line), time.monotonic()

    def on_cell_executed(self, cell, cell_index: int, **_) -> None:
        self.cell = None

    def describe_cell(self) -> str:
        index, first_line = self.cell or self.stalled or (-1, "")
        return f"cell {index} ({first_line[:80]!r})"

    def _tree(self) -> list:
        return [p for p in self.me.children(recursive=True) if p.pid not in self._before]

    def _loop(self) -> None:
        checkpoint = (time.monotonic(), 0.0)
        while not self._stop.wait(self.interval):
            self._sample(self._tree())
            now = time.monotonic()
            if now - checkpoint[0] >= 2.0:
                if self._busy - checkpoint[1] > IDLE_CPU_FRACTION * (now - checkpoint[0]):
                    self._last_active = now
                checkpoint = (now, self._busy)
            if self.cell is not None and now - self._last_active > self.idle_s:
                self.stalled = self.cell
                self._kill(self._tree())

    def _sample(self, tree: list) -> None:
        """Add the tree's memory to the peak and its new CPU seconds to `_busy`."""
        total_mb, cpu = 0.0, {}
        for process in tree:
            try:
                times = process.cpu_times()
                cpu[process.pid] = times.user + times.system
                total_mb += _tree_memory_mb(process)
            except self.psutil.Error:  # the process ended meanwhile
                continue
        self.peak_mb = max(self.peak_mb, total_mb)
        self._busy += sum(max(0.0, t - self._cpu.get(pid, 0.0)) for pid, t in cpu.items())
        self._cpu = cpu

    def _kill(self, tree: list) -> None:
        for process in tree:
            try:
                process.kill()
            except self.psutil.Error:
                continue


def execute_notebook(
    path: str | Path,
    out_dir: str | Path,
    budget: str = "smoke",
    parameters: dict[str, Any] | None = None,
    timeout: float | None = None,
    idle_timeout: float = IDLE_TIMEOUT_S,
) -> NotebookResults:
    """Execute one notebook at `budget` into `out_dir`; return its recorded results.

    Runs in the notebook's own folder with the `python3` kernel of this environment. Figures are
    embedded inline unless `MPLBACKEND` says otherwise (tests set `Agg`, so none are stored).
    `timeout`: seconds per cell (default `CELL_TIMEOUTS[budget]`); `idle_timeout`: seconds a running
    cell may leave the kernel's processes idle (see `KernelWatch`). The results carry
    `peak_tree_mb`. Raises papermill's `PapermillExecutionError` when a cell fails, `TimeoutError`
    when a cell runs past `timeout`, `KernelIdleError` when the kernel sits idle in a cell.
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError

    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}: choose one of {BUDGETS}")
    path, out_dir = Path(path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    timeout = CELL_TIMEOUTS[budget] if timeout is None else timeout
    start = time.perf_counter()
    with _kernel_environment(TQDM_DISABLE="1"), KernelWatch(idle_timeout) as watch:
        try:
            papermill.execute_notebook(
                str(path),
                str(out),
                parameters={"BUDGET": budget, **(parameters or {})},
                kernel_name="python3",
                cwd=str(path.parent),
                progress_bar=False,
                execution_timeout=timeout,
                on_cell_start=watch.on_cell_start,
                on_cell_executed=watch.on_cell_executed,
            )
        except CellTimeoutError as err:
            raise TimeoutError(
                f"{path.name}: {watch.describe_cell()} ran past the {timeout} s cell limit of "
                f"budget {budget!r}; pass a larger timeout= or make the cell cheaper"
            ) from err
        except Exception as err:
            if watch.stalled is None:
                raise
            raise KernelIdleError(
                f"{path.name}: {watch.describe_cell()} was still running but the kernel's "
                f"processes used no CPU for {idle_timeout:.0f} s, so the kernel was killed "
                "(a wait on a process that is gone?)"
            ) from err
    results = NotebookResults(read_notebook(out))
    results.peak_tree_mb = watch.peak_mb
    results.seconds = time.perf_counter() - start
    return results


@contextlib.contextmanager
def _kernel_environment(**variables: str):
    """Environment variables the kernel inherits when it starts. `TQDM_DISABLE=1`: nobody watches a
    headless run's progress bars, and their widget messages are most of the kernel's output traffic
    (and would be saved into the executed notebooks as frozen bars)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _execute_retrying_once_if_idle(nb: Path, out: str, budget: str) -> tuple[NotebookResults, bool]:
    """`execute_notebook` and whether it ran twice: a notebook whose kernel went idle mid-cell
    (`KernelIdleError`) runs once more (reported in results.json: the run is not hidden)."""
    try:
        return execute_notebook(nb, out, budget), False
    except KernelIdleError as err:
        print(f"  {err}\n  running {nb.name} once more (this is reported in results.json)", flush=True)
        return execute_notebook(nb, out, budget), True


# a notebook whose claims time code (a speed-up, parallel workers) runs alone on the machine
TIMING_WORDS = ("faster", "speed", "parallel", "seconds")


def runs_alone(stem: str) -> bool:
    """Whether a claim of notebook `stem` measures wall-clock time (its text says faster, speed,
    parallel or seconds): `--jobs` never runs it beside another notebook."""
    return any(word in claim.text.lower() for claim in CLAIMS.get(stem, []) for word in TIMING_WORDS)


def _run_one(nb: Path, out: str, budget: str) -> tuple[NotebookResults | None, str, bool]:
    """(results or None, the error if it failed, whether it ran twice); never raises."""
    try:
        results, twice = _execute_retrying_once_if_idle(nb, out, budget)
    except Exception as err:  # report every notebook, then fail
        return None, f"{type(err).__name__}: {str(err)[:2000]}", False
    return results, "", twice


def run_series(
    paths: list[Path], out: str, budget: str, jobs: int = 1
) -> tuple[dict[str, NotebookResults], list[str], list[str]]:
    """Execute the notebooks `paths` at `budget` into `out`: (results by stem in series order, failed
    names, names run twice). With `jobs` > 1 the notebooks that do not `runs_alone` run `jobs` at a
    time, each in its own worker process (so its peak memory is its own kernel's tree), then the timed
    ones one at a time with the machine to themselves."""
    outcomes: dict[Path, tuple[NotebookResults | None, str, bool]] = {}
    shared = [nb for nb in paths if jobs > 1 and not runs_alone(nb.stem)]
    if shared:
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(jobs, len(shared)), mp_context=spawn) as pool:
            print(
                f"running {', '.join(nb.name for nb in shared)} at budget={budget}, {jobs} at a time",
                flush=True,
            )
            futures = {pool.submit(_run_one, nb, out, budget): nb for nb in shared}
            for future in as_completed(futures):
                outcomes[futures[future]] = _report(futures[future], future.result())
    for nb in paths:
        if nb not in outcomes:
            print(f"running {nb.name} at budget={budget} ...", flush=True)
            outcomes[nb] = _report(nb, _run_one(nb, out, budget))
    results = {nb.stem: r for nb, (r, _, _) in outcomes.items() if r is not None}
    results = {nb.stem: results[nb.stem] for nb in paths if nb.stem in results}
    failed = [nb.name for nb in paths if outcomes[nb][0] is None]
    retried = [nb.name for nb in paths if outcomes[nb][2]]
    return results, failed, retried


def _report(nb: Path, outcome: tuple[NotebookResults | None, str, bool]) -> tuple:
    results, error, _ = outcome
    if results is None:
        print(f"  {nb.name} FAILED: {error}", flush=True)
    else:
        print(
            f"  {nb.name} done in {results.seconds:.1f} s; peak memory of the kernel and its "
            f"processes {results.peak_tree_mb:.0f} MB",
            flush=True,
        )
    return outcome


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every tutorial notebook and print its results.")
    parser.add_argument("--budget", default="cpu", choices=BUDGETS)
    parser.add_argument("--src", default="tutorials")
    parser.add_argument("--out", default="build/tutorials")
    parser.add_argument("--results", default="build", help="folder for results.json and results.md")
    parser.add_argument("--strict", action="store_true", help="fail (exit 1) unless every claim held")
    parser.add_argument(
        "--jobs", type=int, default=1, help="notebooks run at a time (those timing code always run alone)"
    )
    parser.add_argument(
        "--update-readme",
        nargs="+",
        metavar="RESULTS_JSON",
        help="run nothing: rewrite README.md's reference-results block from these results.json files",
    )
    args = parser.parse_args(argv)
    if args.update_readme:
        changed = update_readme("README.md", args.update_readme)
        print(
            f"README.md {'updated' if changed else 'already up to date'} from {', '.join(args.update_readme)}"
        )
        return 0
    commit = source_commit()
    results, failed, retried = run_series(notebooks(args.src), args.out, args.budget, args.jobs)
    print("\nVerdict: what each notebook's text claims, checked on this run (with this run's numbers)\n")
    print(format_verdicts(results))
    print("\nKey results of this run\n")
    print(format_key_results(results))
    written = write_results(results, failed, args.budget, Path(args.results), commit, retried)
    print(f"\nEvery recorded value, and the executed notebooks in {args.out}: {', '.join(map(str, written))}")
    if failed:
        print(f"\n{len(failed)} notebook(s) failed: {', '.join(failed)}")
    unheld = [
        f"{stem}: {text}" for stem, r in results.items() for text, held, _ in claim_rows(stem, r) if not held
    ]
    if args.strict and unheld:
        print(
            f"\n--strict: {len(unheld)} claim(s) did not hold or were not recorded:\n  " + "\n  ".join(unheld)
        )
    board = scoreboard_text(results)
    if board:
        print(f"\n{board}")
    return 1 if failed or (args.strict and unheld) else 0
