"""Run the tutorial series headlessly with papermill and collect what each notebook recorded.

`python -m modlearn.series --budget smoke` is what `make run` calls. While a notebook runs, a
watchdog thread samples the kernel's process tree (the kernel and every process it started): its
peak memory, summed over the tree, is reported per notebook, and a kernel that uses no CPU for
`idle_timeout` seconds while a cell is still running is killed, failing that notebook with a
message that names the cell (a wait that would otherwise last until the cell timeout).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from .claims import claim_rows, format_evidence, format_key_results, format_verdicts, key_results
from .env import BUDGETS
from .results import format_value, read_notebook


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


def write_results(
    results: dict[str, dict[str, Any]],
    failed: list[str],
    budget: str,
    folder: Path,
    commit: str | None = None,
    retried: list[str] | None = None,
) -> list[Path]:
    """`results.json` (every recorded value and claim verdict) and `results.md` (the same, readable).
    `commit`: the source the run started from (default: `source_commit()` now); `retried`: notebooks
    run a second time after their kernel went idle."""
    folder.mkdir(parents=True, exist_ok=True)
    run = run_description(budget, results, failed, commit or source_commit())
    run["retried"] = retried or []
    notebooks_out = {
        stem: {
            "results": dict(values),
            "claims": [
                {"claim": text, "held": held, "values": evidence}
                for text, held, evidence in claim_rows(stem, values)
            ],
            "key_results": key_results(stem, values),
            "peak_tree_mb": getattr(values, "peak_tree_mb", None),
            "seconds": getattr(values, "seconds", None),
        }
        for stem, values in results.items()
    }
    json_path, md_path = folder / "results.json", folder / "results.md"
    json_path.write_text(json.dumps({"run": run, "notebooks": notebooks_out}, indent=1))
    md_path.write_text(_results_markdown(run, notebooks_out))
    return [json_path, md_path]


def run_description(
    budget: str, results: dict[str, dict[str, Any]], failed: list[str], commit: str
) -> dict[str, Any]:
    """Which run this was: budget, datasets used, data folder, machine, commit, date."""
    datasets = sorted({str(r["dataset"]) for r in results.values() if "dataset" in r})
    return {
        "budget": budget,
        "datasets": datasets,
        "MODLEARN_DATA": os.environ.get("MODLEARN_DATA", "(not set: embedded digits)"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}",
        "commit": commit,
        "date": time.strftime("%Y-%m-%d"),
        "failed": failed,
    }


def source_commit() -> str:
    """The checked-out commit, `+modified` when tracked files under modlearn/ or tutorials/ differ from
    it (`unknown` outside a git checkout)."""
    head = _git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+modified" if _git("status", "--porcelain", "--", "modlearn", "tutorials") else "")


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
    except OSError:
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _results_markdown(run: dict[str, Any], notebooks_out: dict[str, dict[str, Any]]) -> str:
    words = {True: "held", False: "**did not hold**", None: "not recorded"}
    lines = [f"# Results of one run: {describe_run(run)}", ""]
    if run["failed"]:
        lines += [f"Failed notebooks: {', '.join(run['failed'])}", ""]
    for stem, entry in notebooks_out.items():
        lines += [f"## {stem}", "", f"Key results: {entry['key_results']}", ""]
        lines += ["| claim | verdict | this run |", "|---|---|---|"]
        lines += [
            f"| {c['claim']} | {words[c['held']]} | {format_evidence(c['values'])} |" for c in entry["claims"]
        ]
        lines += ["", "| result | value |", "|---|---|"]
        lines += [f"| `{key}` | {format_value(value)} |" for key, value in entry["results"].items()]
        lines.append("")
    return "\n".join(lines)


README_BEGIN = "<!-- reference results: generated by `make readme` from results/*.json; do not edit -->"
README_END = "<!-- end of reference results -->"


def describe_run(run: dict[str, Any]) -> str:
    """`budget cpu, digits, commit abc1234 (2026-11-29), x86_64, 2 CPUs, Linux`."""
    data = ", ".join(run.get("datasets") or ["?"])
    return (
        f"budget `{run['budget']}`, {data}, commit {run.get('commit', '?')} ({run.get('date', '?')}), "
        f"{run.get('machine', '?')}"
    )


def readme_results_block(runs: list[dict[str, Any]]) -> str:
    """The README's table of key results: one column per reference run (a `results.json`), and under
    it how many of the text's claims held on that run."""
    labels = [f"`{r['run']['budget']}`, {', '.join(r['run'].get('datasets') or ['?'])}" for r in runs]
    stems = sorted({stem for r in runs for stem in r["notebooks"]})
    lines = [README_BEGIN, ""]
    for label, r in zip(labels, runs, strict=True):
        held = [c["held"] for entry in r["notebooks"].values() for c in entry["claims"]]
        lines.append(
            f"- **reference run {label}**: {describe_run(r['run'])}; "
            f"{sum(h is True for h in held)} of {len(held)} claims held; {_costs(r['notebooks'])}."
        )
    lines += ["", "| notebook | " + " | ".join(labels) + " |", "|---" * (len(runs) + 1) + "|"]
    for stem in stems:
        cells = [_key_cell(stem, r["notebooks"].get(stem)) for r in runs]
        lines.append(f"| {stem} | " + " | ".join(cells) + " |")
    boards = [
        (label, scoreboard_text({stem: e["results"] for stem, e in r["notebooks"].items()}))
        for label, r in zip(labels, runs, strict=True)
    ]
    label, board = next(((label, b) for label, b in boards if b), ("", ""))
    if board:
        lines += ["", f"**{board.splitlines()[0]}**, reference run {label}:", *board.splitlines()[1:]]
    return "\n".join([*lines, "", README_END])


SCOREBOARD = "09_scoreboard"


def scoreboard_text(results: dict[str, dict[str, Any]]) -> str:
    """Notebook 09's scoreboard as its run recorded it (a markdown table), under a title naming the
    run's data; empty when the series ran without notebook 09."""
    entry = results.get(SCOREBOARD) or {}
    if "scoreboard_table" not in entry:
        return ""
    return (
        f"Scoreboard (notebook 09: one MLP, {entry.get('steps')} steps, every method and metric of the "
        f"series, {entry.get('dataset')})\n\n{entry['scoreboard_table']}"
    )


def _key_cell(stem: str, entry: dict[str, Any] | None) -> str:
    """The key-results line of one notebook of a results.json, rendered with today's `KEY_RESULTS`
    from the values that run recorded."""
    return "not run" if entry is None else key_results(stem, entry["results"]).replace("|", "\\|")


def _costs(notebooks_out: dict[str, dict[str, Any]]) -> str:
    """`run times 00 9 s, 01 10 s, ...; peak memory 874 MB` from a results.json's notebooks."""
    times = [f"{stem[:2]} {e['seconds']:.0f} s" for stem, e in notebooks_out.items() if e.get("seconds")]
    peaks = [e["peak_tree_mb"] for e in notebooks_out.values() if e.get("peak_tree_mb")]
    total = sum(e.get("seconds") or 0 for e in notebooks_out.values())
    text = f"run times {', '.join(times)} (total {total / 60:.1f} min)" if times else "run times not recorded"
    return text + (f"; peak memory {max(peaks):.0f} MB" if peaks else "")


def update_readme(readme: str | Path, result_files: list[str | Path]) -> bool:
    """Rewrite the block between `README_BEGIN` and `README_END` of `readme` from `result_files`
    (each a `results.json` of `make run`). Returns whether the file changed."""
    path = Path(readme)
    text = path.read_text()
    if README_BEGIN not in text or README_END not in text:
        raise ValueError(
            f"readme={str(path)!r} has no block marked {README_BEGIN!r} ... {README_END!r}: "
            "add those two lines where the table belongs"
        )
    head, rest = text.split(README_BEGIN, 1)
    tail = rest.split(README_END, 1)[1]
    runs = [json.loads(Path(f).read_text()) for f in result_files]
    new = head + readme_results_block(runs) + tail
    path.write_text(new)
    return new != text


def _execute_retrying_once_if_idle(nb: Path, out: str, budget: str, retried: list[str]) -> NotebookResults:
    """`execute_notebook`; a notebook whose kernel went idle mid-cell (`KernelIdleError`) runs once
    more, and its name is added to `retried` (reported in results.json: the run is not hidden)."""
    try:
        return execute_notebook(nb, out, budget)
    except KernelIdleError as err:
        print(f"  {err}\n  running {nb.name} once more (this is reported in results.json)", flush=True)
        retried.append(nb.name)
        return execute_notebook(nb, out, budget)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every tutorial notebook and print its results.")
    parser.add_argument("--budget", default="cpu", choices=BUDGETS)
    parser.add_argument("--src", default="tutorials")
    parser.add_argument("--out", default="build/tutorials")
    parser.add_argument("--results", default="build", help="folder for results.json and results.md")
    parser.add_argument("--strict", action="store_true", help="fail (exit 1) unless every claim held")
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
    results, failed, retried, commit = {}, [], [], source_commit()
    for nb in notebooks(args.src):
        print(f"running {nb.name} at budget={args.budget} ...", flush=True)
        try:
            results[nb.stem] = _execute_retrying_once_if_idle(nb, args.out, args.budget, retried)
        except Exception as err:  # report every notebook, then fail
            failed.append(nb.name)
            print(f"  FAILED: {type(err).__name__}: {str(err)[:2000]}")
            continue
        print(
            f"  done in {results[nb.stem].seconds:.1f} s; peak memory of the kernel and its "
            f"processes {results[nb.stem].peak_tree_mb:.0f} MB",
            flush=True,
        )
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


if __name__ == "__main__":
    sys.exit(main())
