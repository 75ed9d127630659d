"""Record a notebook's key numbers so that tests and `make run` can read them back.

`record("cnn_test_acc", 0.97)` shows the value in the notebook and stores it in the cell's
output under a private MIME type; `read_notebook(path)` collects every recorded value from an
executed notebook. Introduced in `tutorials/00_tour.ipynb`.
"""

from __future__ import annotations

import json
import math
import numbers
import re
import statistics
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

MIME = "application/vnd.modlearn.results+json"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_recorded: dict[str, Any] = {}
UNDEFINED = "n/a"


def record(name: str, value: Any) -> Any:
    """Record `value` (a number, bool or short string) under `name`; returns the value.

    In a notebook the value is shown and kept in the output; elsewhere it is printed. A value that
    is undefined in this run (a NaN or infinite float, e.g. the sd of one seed) is recorded as None,
    which a notebook's JSON can hold, and `report` shows it as "n/a".
    """
    if not _NAME.match(name):
        raise ValueError(f"result name {name!r} must be an identifier such as 'cnn_test_acc'")
    value = _plain(value)
    _recorded[name] = value
    text = f"recorded: {name} = {format_value(value)}"
    if _in_kernel():
        from IPython.display import display

        display({MIME: {name: value}, "text/plain": text}, raw=True)
    else:
        print(text)
    return value


def report(markdown: str) -> None:
    """Show `markdown` with `{name}` / `{name:.3f}` fields filled from the values recorded so far.

    This is how a notebook's prose states a measured outcome: the number comes from this run, never
    typed by hand: `report("DGL reached **{mlp_dgl_test_acc:.3f}**")`. Returns nothing, so a cell
    ending with it shows the text once.
    """
    try:
        text = _ReportFormatter().format(markdown, **_recorded)
    except KeyError as err:
        raise ValueError(
            f"report(...) names {err.args[0]!r}, which this run has not recorded; record it first "
            f"with record({err.args[0]!r}, value). Recorded so far: {sorted(_recorded)}"
        ) from None
    if _in_kernel():
        from IPython.display import Markdown, display

        display(Markdown(text))
    else:
        print(text)


def recorded() -> dict[str, Any]:
    """Everything recorded in this process so far."""
    return dict(_recorded)


def read_notebook(path: str | Path) -> dict[str, Any]:
    """All values recorded in an executed notebook (the latest value of each name wins)."""
    nb = json.loads(Path(path).read_text())
    found: dict[str, Any] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if MIME in data:
                found.update(data[MIME])
    return found


def seed_summary(values: Sequence[float | None]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1) of per-seed values: the one rule of the series.

    A value that is None or NaN (undefined in that run, see `record`) is left out; the mean is NaN when
    no value is left and the sd is NaN below two values (one seed measures no spread).
    """
    kept = [float(v) for v in values if v is not None and not math.isnan(v)]
    if not kept:
        return math.nan, math.nan
    return statistics.fmean(kept), statistics.stdev(kept) if len(kept) > 1 else math.nan


def paired_verdict(a: Sequence[float], b: Sequence[float]) -> str:
    """`"smaller"` / `"larger"` when `a` is below / above `b` on every seed (paired) and the mean
    difference exceeds twice the differences' sd; otherwise `"not distinguishable"` (also when any
    seed's value is NaN: an undefined seed cannot be paired)."""
    diff = [x - y for x, y in zip(a, b, strict=True)]
    if not diff or any(math.isnan(d) for d in diff):
        return "not distinguishable"
    mean = statistics.fmean(diff)
    spread = 2 * statistics.stdev(diff) if len(diff) > 1 else 0.0
    if all(d < 0 for d in diff) and -mean > spread:
        return "smaller"
    if all(d > 0 for d in diff) and mean > spread:
        return "larger"
    return "not distinguishable"


def format_rows(rows: dict[str, dict[str, Any]], width: int = 14) -> str:
    """A text table: one row per name (a method, a mode), one column per metric (floats as 4 digits)."""
    keys = list(next(iter(rows.values())))
    first = max(len(name) for name in rows) + 2
    lines = [" " * first + "".join(f"{k:>{width}}" for k in keys)]
    for name, row in rows.items():
        cells = [
            f"{row[k]:>{width}.4g}" if isinstance(row[k], float) else f"{row[k]!s:>{width}}" for k in keys
        ]
        lines.append(f"{name:<{first}}" + "".join(cells))
    return "\n".join(lines)


def _plain(value: Any) -> Any:
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value) if math.isfinite(value) else None
    raise ValueError(f"cannot record {type(value).__name__}: record numbers, bools or short strings")


def format_value(value: Any) -> str:
    """A recorded value as text: floats with 4 significant digits, None (undefined) as "n/a"."""
    if value is None:
        return UNDEFINED
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class _ReportFormatter(string.Formatter):
    """`str.format`, except that a field holding None (undefined in this run) reads "n/a"."""

    def format_field(self, value: Any, format_spec: str) -> str:
        return UNDEFINED if value is None else super().format_field(value, format_spec)


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")
