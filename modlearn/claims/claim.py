"""A claim: one sentence of a notebook checked on the values its run recorded, and the thresholds
that the checks share (`for_run`, `paired_verdict`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..results import paired_verdict

Results = Mapping[str, Any]


@dataclass(frozen=True)
class Claim:
    """One sentence of a notebook (`text`) and the check of it on the recorded results. `timed`: the
    check compares wall-clock times (a speed-up), so the series runs that notebook with the machine
    to itself (`modlearn.series.runs_alone`)."""

    text: str
    check: Callable[[Results], bool]
    timed: bool = False

    def verdict(self, results: Results) -> bool | None:
        """True or False; None when the run did not record a value the claim needs."""
        try:
            return bool(self.check(results))
        except KeyError:
            return None

    def evidence(self, results: Results) -> dict[str, Any]:
        """The recorded values the check reads (its numbers for this run), in the order it reads them;
        the run's `budget` and `dataset` are left out."""
        reads = _ReadLog(results)
        try:
            self.check(reads)
        except KeyError:
            pass
        return {key: results[key] for key in reads.keys_read if key not in _RUN_KEYS}


_RUN_KEYS = ("budget", "dataset")


class _ReadLog(Mapping):
    """A read-only view of `results` that remembers which keys were read (present ones only)."""

    def __init__(self, results: Results) -> None:
        self._results, self.keys_read = results, []

    def __getitem__(self, key: str) -> Any:
        value = self._results[key]
        if key not in self.keys_read:
            self.keys_read.append(key)
        return value

    def __iter__(self):
        return iter(self._results)

    def __len__(self) -> int:
        return len(self._results)


def for_run(
    r: Results, smoke: float, cpu: float, mnist: float | None = None, gpu: float | None = None
) -> float:
    """A claim's threshold for this run (`r["budget"]`, `r["dataset"]`), each one measured.

    `mnist` applies at the `cpu`/`gpu` budgets when the run trained on MNIST; `gpu` defaults to `cpu`.
    """
    if r["budget"] == "smoke":
        return smoke
    if mnist is not None and r.get("dataset") == "mnist":
        return mnist
    return cpu if r["budget"] == "cpu" or gpu is None else gpu


def undefined_as_nan(value: float | None) -> float:
    """A recorded number, with None (undefined in that run, see `results.record`) as NaN."""
    return math.nan if value is None else float(value)


__all__ = ["Claim", "Results", "for_run", "paired_verdict", "undefined_as_nan"]
