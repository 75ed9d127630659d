"""Reading the scored runs: mean and sd over seeds, whether the metrics agree (Spearman's rho), the
best method per metric, and the markdown table."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from ..results import seed_summary
from .methods import NAMES
from .metrics import directions


def score_summary(scores: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per method (the part of a `"<method>/<seed>"` key before the slash), per metric: the mean
    and sample sd over its seeds `(mean, sd)` (sd NaN for one seed; NaN values are skipped)."""
    grouped: dict[str, list[Mapping[str, float]]] = {}
    for label, row in scores.items():
        grouped.setdefault(label.split("/")[0], []).append(row)
    summary = {}
    for method, rows in grouped.items():
        summary[method] = {}
        for metric in rows[0]:
            summary[method][metric] = seed_summary([r[metric] for r in rows])
    return summary


def rank_correlations(scores: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Spearman's rho between every pair of metrics across the models of `scores` (`score`'s output),
    each pair over the models where both are defined: `{metric: {metric: rho}}`, 1 on the diagonal;
    NaN where a metric is constant across those models."""
    from scipy.stats import spearmanr

    if len(scores) < 2:
        raise ValueError(
            f"rank_correlations(scores=<{len(scores)} model(s)>): scores must hold at least 2 models; "
            "score more models (e.g. more seeds)"
        )
    names = list(next(iter(scores.values())))
    columns = {metric: np.array([row[metric] for row in scores.values()], dtype=float) for metric in names}

    def rho(a: str, b: str) -> float:
        both = ~(np.isnan(columns[a]) | np.isnan(columns[b]))
        if a == b:
            return 1.0
        if both.sum() < 2:
            return math.nan
        return float(spearmanr(columns[a][both], columns[b][both]).statistic)

    return {a: {b: rho(a, b) for b in names} for a in names}


def normalise(values: Sequence[float], higher_is_better: bool) -> list[float]:
    """`values` scaled to [0, 1] so that 1 is the best of them (min-max, in the metric's direction);
    all 0.5 when they are equal; NaN stays NaN."""
    array = np.asarray(values, dtype=float)
    low, high = np.nanmin(array), np.nanmax(array)
    if not high > low:
        return [math.nan if math.isnan(v) else 0.5 for v in array]
    scaled = (array - low) / (high - low)
    return list(scaled if higher_is_better else 1.0 - scaled)


SHORT = {
    "test accuracy": "acc",
    "clusterability C": "C",
    "cut cost": "cut",
    "Newman Q": "Q",
    "wire length": "wire",
    "module size": "module",
    "circuit edges": "edges",
    "train seconds": "seconds",
    "activation MB": "memory_mb",
}
"""Short names of the metrics and costs, for recorded values (`<method>_<short>`)."""


WEIGHT_METRICS = ("clusterability C", "cut cost", "Newman Q", "wire length")
"""Metrics that read the weights as a graph (notebooks 04 and 06)."""


FUNCTION_METRICS = ("module size", "circuit edges")
"""Metrics that ask what the network computes with which parts (notebooks 05 and 07)."""


def oriented(rho: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """`rank_correlations` with each metric's direction applied: +1 means the two metrics call the
    same models better (more modular), -1 that one's best are the other's worst."""
    better = directions()
    sign = {k: 1.0 if better[k] else -1.0 for k in rho}
    return {a: {b: rho[a][b] * sign[a] * sign[b] for b in rho[a]} for a in rho}


def family_agreement(
    rho: Mapping[str, Mapping[str, float]], first: Sequence[str], second: Sequence[str]
) -> float:
    """Mean oriented rho over the pairs of one metric of `first` and another of `second` (NaN pairs
    skipped): how far the two families of metrics agree on which models are modular."""
    agreement = oriented(rho)
    values = [agreement[a][b] for a in first for b in second if a != b and not math.isnan(agreement[a][b])]
    return float(np.mean(values)) if values else math.nan


def best_method(summary: Mapping[str, Mapping[str, tuple[float, float]]], metric: str) -> str:
    """The method whose mean is the best for `metric` (NaN means skipped)."""
    better = directions()[metric]
    means = {m: row[metric][0] for m, row in summary.items() if not math.isnan(row[metric][0])}
    return (max if better else min)(means, key=means.get)


FORMATS = {"circuit edges": ".0f", "train seconds": ".2f", "activation MB": ".3f"}
"""Number formats of the scoreboard table (default `.3f`)."""


def markdown_table(summary: Mapping[str, Mapping[str, tuple[float, float]]], seeds: int) -> str:
    """The scoreboard as a markdown table: a row per method, `mean ± sd` over `seeds` per metric, the
    best mean of each column in bold, n/a where a metric is not defined for the method."""
    metrics = list(next(iter(summary.values())))
    better = directions()
    best = {k: best_method(summary, k) for k in metrics}
    head = ["method"] + [f"{k} {'↑' if better[k] else '↓'}" for k in metrics]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for method, row in summary.items():
        cells = []
        for metric, (mean, sd) in row.items():
            form = FORMATS.get(metric, ".3f")
            text = (
                "n/a"
                if math.isnan(mean)
                else f"{mean:{form}}" + ("" if math.isnan(sd) else f" ± {sd:{form}}")
            )
            cells.append(f"**{text}**" if best[metric] == method else text)
        lines.append(f"| {NAMES.get(method, method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + (
        f"\n\nmean ± sd over {seeds} seed(s); ↑ higher is better, ↓ lower is better; the best mean in bold"
    )
