"""Run the tutorial series headlessly with papermill and collect what each notebook recorded.

`python -m modlearn.series --budget smoke` is what `make run` calls.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from .env import BUDGETS
from .results import format_table, read_notebook


def notebooks(folder: str | Path = "tutorials") -> list[Path]:
    """The numbered notebooks of the series, in order."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))


def execute_notebook(path: str | Path, out_dir: str | Path, budget: str = "smoke",
                     parameters: dict[str, Any] | None = None, timeout: int = 1800) -> dict[str, Any]:
    """Execute one notebook at `budget` into `out_dir`; return its recorded results.

    Runs in the notebook's own folder with the `python3` kernel of this environment. Figures are
    embedded inline unless `MPLBACKEND` says otherwise (tests set `Agg`, so none are stored).
    Raises papermill's `PapermillExecutionError` when a cell fails.
    """
    import papermill

    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}: choose one of {BUDGETS}")
    path, out_dir = Path(path), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / path.name
    papermill.execute_notebook(str(path), str(out), parameters={"BUDGET": budget, **(parameters or {})},
                               kernel_name="python3", cwd=str(path.parent), progress_bar=False,
                               execution_timeout=timeout)
    return read_notebook(out)


def _peak_child_rss_mb() -> float:
    """Largest resident set of any finished child process (the notebook kernels), in MB."""
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run every tutorial notebook and print its results.")
    parser.add_argument("--budget", default="cpu", choices=BUDGETS)
    parser.add_argument("--src", default="tutorials")
    parser.add_argument("--out", default="build/tutorials")
    args = parser.parse_args(argv)
    results, failed = {}, []
    for nb in notebooks(args.src):
        start = time.perf_counter()
        print(f"running {nb.name} at budget={args.budget} ...", flush=True)
        try:
            results[nb.stem] = execute_notebook(nb, args.out, args.budget)
        except Exception as err:  # report every notebook, then fail
            failed.append(nb.name)
            print(f"  FAILED: {type(err).__name__}: {str(err)[:2000]}")
            continue
        print(f"  done in {time.perf_counter() - start:.1f} s; peak kernel memory so far "
              f"{_peak_child_rss_mb():.0f} MB", flush=True)
    print("\nResults recorded by the notebooks (executed copies in %s):\n" % args.out)
    print(format_table(results))
    if failed:
        print(f"\n{len(failed)} notebook(s) failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
