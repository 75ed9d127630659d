"""What a multi-stage method (greedy modules, DCM groups, incubated stages) says when Ctrl-C stops it.

`fit` turns Ctrl-C into a `History` with `interrupted=True`; a method that calls `fit` once per
stage checks it after each call, stops the remaining stages and returns what finished.
"""

from __future__ import annotations

from collections.abc import Sequence


def report_interrupt(kind: str, finished: Sequence[object], unfinished: Sequence[object]) -> None:
    """Print one line: which `kind` (e.g. "modules") finished and are kept, which did not finish."""
    print(
        f"Interrupted: {kind} {list(finished)} finished and kept; {kind} {list(unfinished)} "
        "not (fully) trained.",
        flush=True,
    )
