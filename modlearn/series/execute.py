"""Execute one notebook with papermill, watching its kernel: `execute_notebook`.

While a notebook runs, a watchdog thread samples the kernel's process tree (the kernel and every
process it started): its peak memory, summed over the tree, is reported, and a kernel that uses no
CPU for `idle_timeout` seconds while a cell is still running is killed, failing that notebook with a
message that names the cell (a wait that would otherwise last until the cell timeout).
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..env import BUDGETS
from ..results import read_notebook

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
    with kernel_environment(TQDM_DISABLE="1"), KernelWatch(idle_timeout) as watch:
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
def kernel_environment(**variables: str | None) -> Iterator[None]:
    """Set environment variables (None: unset one) for what starts inside the block (kernels inherit
    them), then restore them. `execute_notebook` sets `TQDM_DISABLE=1`: nobody watches a headless
    run's progress bars, and their widget messages are most of the kernel's output traffic (and would
    be saved into the executed notebooks as frozen bars)."""
    saved = {name: os.environ.get(name) for name in variables}
    try:
        _set_environment(variables)
        yield
    finally:
        _set_environment(saved)


def _set_environment(variables: dict[str, str | None]) -> None:
    for name, value in variables.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
