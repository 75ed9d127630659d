"""Notebook 09's exercises: Spearman's rank correlation, a module's weight retention, the
scoreboard's normalised scores."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from .. import scoreboard
from .core import CheckFailed, Exercise, compare_values, register

NOTEBOOK = "09_scoreboard"


# --------------------------------------------------------------------------- references


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho of two equal-length 1-D sequences (`scipy.stats.spearmanr`), as a float."""
    from scipy.stats import spearmanr

    return float(spearmanr(a, b).statistic)


def retained_weights(kept: Sequence[int], widths: Sequence[int]) -> float:
    """`scoreboard.retained_weights` with the exercise's signature: `kept[l]` units kept (the first
    ones) of layer `l + 1`, `widths` the layer widths input first; the share of weights retained."""
    keep = {f"block{l}": torch.arange(widths[l + 1]) < k for l, k in enumerate(kept)}
    return scoreboard.retained_weights(keep, widths)


def normalised(values: Sequence[float], higher_is_better: bool) -> list[float]:
    """`scoreboard.normalise`: min-max scaled to [0, 1], 1 the best; all 0.5 when equal; NaN stays."""
    return [float(v) for v in scoreboard.normalise(values, higher_is_better)]


# --------------------------------------------------------------------------- worked solutions


def spearman_from_ranks(a: Sequence[float], b: Sequence[float]) -> float:
    """The learner's way: average ranks by counting, then Pearson's r of the ranks."""

    def ranks(x):
        x = np.asarray(x, dtype=float)
        below = (x[None, :] < x[:, None]).sum(axis=1)
        equal = (x[None, :] == x[:, None]).sum(axis=1)  # itself included
        return below + (equal + 1) / 2

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def retained_weights_by_counts(kept: Sequence[int], widths: Sequence[int]) -> float:
    """The learner's way: kept units per layer (every input kept), products of neighbours."""
    ends = [widths[0], *kept]
    retained = sum(a * b for a, b in zip(ends[:-1], ends[1:], strict=True))
    total = sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    return retained / total


def normalised_by_hand(values: Sequence[float], higher_is_better: bool) -> list[float]:
    """The learner's way: NumPy's NaN-aware min and max, then a flip for lower-is-better metrics."""
    x = np.asarray(values, dtype=float)
    low, high = np.nanmin(x), np.nanmax(x)
    if not high > low:
        return list(np.where(np.isnan(x), np.nan, 0.5))
    scaled = (x - low) / (high - low)
    return list(scaled if higher_is_better else 1 - scaled)


# --------------------------------------------------------------------------- comparisons and cases


def _compare_scores(got: Any, expected: Sequence[float], case: str) -> None:
    """Entry by entry, NaN only where NaN is expected (a list, an array or a tensor is accepted)."""
    try:
        array = np.asarray(got.detach() if isinstance(got, torch.Tensor) else got, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise CheckFailed(
            f"case '{case}': expected a list of {len(expected)} numbers, got {type(got).__name__}"
        ) from err
    if array.shape != (len(expected),):
        raise CheckFailed(
            f"case '{case}': expected {len(expected)} numbers (one per value), got shape {array.shape}"
        )
    compare_values(torch.as_tensor(array), torch.tensor(expected, dtype=torch.float64), case)


def _spearman_cases():
    rng = np.random.default_rng(9)
    yield "random 10 values each", (rng.normal(size=10).tolist(), rng.normal(size=10).tolist()), {}
    x = rng.uniform(0.0, 3.0, size=8)
    yield "a monotone but not linear pair (rho = 1)", (x.tolist(), np.exp(2 * x).tolist()), {}
    yield "a reversed pair (rho = -1)", (x.tolist(), (5.0 - x**3).tolist()), {}
    yield (
        "ties in both",
        ([1.0, 2.0, 2.0, 3.0, 4.0, 4.0, 4.0, 5.0], [2.0, 1.0, 3.0, 3.0, 5.0, 6.0, 4.0, 6.0]),
        {},
    )
    yield "3 values", ([0.5, 2.0, 1.0], [1.0, 3.0, 0.0]), {}


def _module_cases():
    yield "every unit kept (1.0)", ([32, 32], [64, 32, 32]), {}
    yield "a typical module", ([40, 25, 30], [64, 128, 128, 128]), {}
    yield "one unit per layer", ([1, 1, 1], [64, 32, 32, 32]), {}
    yield "a single hidden layer", ([7], [20, 16]), {}
    yield "widths of different sizes", ([12, 10, 5], [30, 50, 10, 40]), {}


def _score_cases():
    yield "higher is better", ([0.2, 0.9, 0.5, 0.7], True), {}
    yield "lower is better", ([3.0, 1.0, 2.5, 7.0], False), {}
    yield "equal values (all 0.5)", ([0.4, 0.4, 0.4], True), {}
    yield "one NaN among them (it stays NaN)", ([12.0, float("nan"), 4.0, 6.0], False), {}


register(
    Exercise(
        name="spearman",
        notebook=NOTEBOOK,
        title="Spearman's rank correlation",
        difficulty=2,
        minutes=10,
        reference=spearman,
        cases=_spearman_cases,
        solution=spearman_from_ranks,
    )
)
register(
    Exercise(
        name="retained_weights",
        notebook=NOTEBOOK,
        title="A module's weight retention",
        difficulty=1,
        minutes=5,
        reference=retained_weights,
        cases=_module_cases,
        solution=retained_weights_by_counts,
    )
)
register(
    Exercise(
        name="normalised",
        notebook=NOTEBOOK,
        title="Normalised scores",
        difficulty=1,
        minutes=5,
        reference=normalised,
        cases=_score_cases,
        compare=_compare_scores,
        solution=normalised_by_hand,
    )
)
