"""Run the tutorial series headlessly with papermill and collect what each notebook recorded:
one notebook under a watchdog is `execute.py`, the order and the pool `schedule.py`, what is written
from the results (results.json and the README's table) `report.py`.

`python -m modlearn.series --budget smoke` is what `make run` calls; `make test-series` passes
`--run` once per dataset so that both passes share one pool of `--jobs` notebooks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..claims import claim_rows, format_key_results, format_verdicts
from ..env import BUDGETS
from .execute import (
    CELL_TIMEOUTS,
    IDLE_CPU_FRACTION,
    IDLE_TIMEOUT_S,
    KernelIdleError,
    KernelWatch,
    NotebookResults,
    execute_notebook,
    kernel_environment,
)
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
from .schedule import SeriesRun, reference_seconds, run_all, run_series, runs_alone, threads_beside

__all__ = [
    "CELL_TIMEOUTS",
    "IDLE_CPU_FRACTION",
    "IDLE_TIMEOUT_S",
    "README_BEGIN",
    "README_END",
    "KernelIdleError",
    "KernelWatch",
    "NotebookResults",
    "SeriesRun",
    "describe_run",
    "execute_notebook",
    "kernel_environment",
    "main",
    "notebooks",
    "readme_results_block",
    "reference_seconds",
    "run_all",
    "run_description",
    "run_series",
    "runs_alone",
    "scoreboard_text",
    "source_commit",
    "threads_beside",
    "update_readme",
    "write_results",
]


def notebooks(folder: str | Path = "tutorials") -> list[Path]:
    """The numbered notebooks of the series, in order."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))


def main(argv: list[str] | None = None) -> int:
    """The command line (`python -m modlearn.series --help`); returns the exit status."""
    parser = argparse.ArgumentParser(description="Run every tutorial notebook and print its results.")
    parser.add_argument("--budget", default="cpu", choices=BUDGETS)
    parser.add_argument("--src", default="tutorials")
    parser.add_argument("--out", default="build/tutorials", help="folder for the executed notebooks")
    parser.add_argument("--results", default="build", help="folder for results.json and results.md")
    parser.add_argument(
        "--run",
        nargs="+",
        action="append",
        metavar=("DATA RESULTS", "REFERENCE"),
        help="one pass over the series with MODLEARN_DATA=DATA ('-': unset, the embedded digits), its "
        "results in RESULTS and the executed notebooks in RESULTS/tutorials; REFERENCE: an earlier "
        "results.json whose times order the pool. Repeat it: every pass shares one pool of --jobs "
        "(replaces --out and --results)",
    )
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
    if args.jobs < 1:
        parser.error(f"--jobs {args.jobs}: run at least one notebook at a time (--jobs 1 or more)")
    paths = tuple(notebooks(args.src))
    runs = [_pass_of(spec, paths, parser) for spec in args.run] if args.run else [SeriesRun(paths, args.out)]
    folders = [Path(spec[1]) for spec in args.run] if args.run else [Path(args.results)]
    commit = source_commit()
    statuses = [
        _conclude(run, folder, outcome, args.budget, commit, args.strict)
        for run, folder, outcome in zip(runs, folders, run_all(runs, args.budget, args.jobs), strict=True)
    ]
    return max(statuses)


def _pass_of(spec: list[str], paths: tuple[Path, ...], parser: argparse.ArgumentParser) -> SeriesRun:
    """`--run DATA RESULTS [REFERENCE]` as a `SeriesRun`."""
    if len(spec) not in (2, 3):
        parser.error(f"--run {' '.join(spec)}: give DATA RESULTS [REFERENCE], e.g. --run - build/cpu-digits")
    data = None if spec[0] == "-" else str(Path(spec[0]).resolve())
    return SeriesRun(
        paths,
        str(Path(spec[1]) / "tutorials"),
        label=Path(spec[1]).name,
        environment={"MODLEARN_DATA": data},
        reference=reference_seconds(spec[2] if len(spec) == 3 else None),
    )


def _conclude(run: SeriesRun, folder: Path, outcome: tuple, budget: str, commit: str, strict: bool) -> int:
    """Print one pass's verdicts and key results, write its results files; its exit status."""
    results, failed, retried = outcome
    title = f" ({run.label})" if run.label else ""
    print(f"\nVerdict{title}: what each notebook's text claims, checked on this run (with its numbers)\n")
    print(format_verdicts(results))
    print(f"\nKey results of this run{title}\n")
    print(format_key_results(results))
    with kernel_environment(**run.environment):  # the run's MODLEARN_DATA, as its kernels saw it
        written = write_results(results, failed, budget, folder, commit, retried)
    print(f"\nEvery recorded value, and the executed notebooks in {run.out}: {', '.join(map(str, written))}")
    if failed:
        print(f"\n{len(failed)} notebook(s) failed: {', '.join(failed)}")
    unheld = [
        f"{stem}: {text}" for stem, r in results.items() for text, held, _ in claim_rows(stem, r) if not held
    ]
    if strict and unheld:
        print(
            f"\n--strict: {len(unheld)} claim(s) did not hold or were not recorded:\n  " + "\n  ".join(unheld)
        )
    board = scoreboard_text(results)
    if board:
        print(f"\n{board}")
    return 1 if failed or (strict and unheld) else 0
