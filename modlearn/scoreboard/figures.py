"""The scoreboard's pictures: methods x metrics, and the metrics' rank agreement."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from .methods import NAMES
from .metrics import directions
from .summary import normalise

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_scoreboard(
    summary: Mapping[str, Mapping[str, tuple[float, float]]], metrics: Sequence[str] | None = None
) -> Figure:
    """Methods x metrics: each metric's means min-max normalised across the methods (`normalise`:
    dark = best, grey = not defined), the mean printed in each cell, the direction in the column
    title. Returns the figure."""
    import matplotlib.pyplot as plt

    methods = list(summary)
    metrics = list(metrics or next(iter(summary.values())))
    better = directions()
    means = np.array([[summary[m][k][0] for k in metrics] for m in methods])
    shade = np.array([normalise(means[:, j], better[k]) for j, k in enumerate(metrics)]).T
    fig, ax = plt.subplots(figsize=(1.15 * len(metrics) + 2.2, 0.42 * len(methods) + 1.6))
    cmap = plt.get_cmap("Greens").copy()
    cmap.set_bad("lightgrey")
    ax.imshow(np.ma.masked_invalid(shade), cmap=cmap, vmin=-0.15, vmax=1.15, aspect="auto")
    for i in range(len(methods)):
        for j in range(len(metrics)):
            value = means[i, j]
            text = "n/a" if math.isnan(value) else f"{value:.3g}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7.5, color="black")
    ax.set_xticks(
        range(len(metrics)),
        [f"{k}\n({'higher' if better[k] else 'lower'} is better)" for k in metrics],
        fontsize=7.5,
    )
    ax.set_yticks(range(len(methods)), [NAMES.get(m, m) for m in methods], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_title(
        "scoreboard: mean over seeds; shade = min-max within the column (dark = best, grey = n/a)",
        fontsize=9,
        pad=34,
    )
    fig.tight_layout()
    return fig


def plot_rank_correlations(rho: Mapping[str, Mapping[str, float]]) -> Figure:
    """The Spearman rho matrix between metrics (`rank_correlations`), each metric oriented so that
    +1 means "the two agree on which models are more modular / better". Returns the figure."""
    import matplotlib.pyplot as plt

    names = list(rho)
    better = directions()
    sign = np.array([1.0 if better[k] else -1.0 for k in names])
    matrix = np.array([[rho[a][b] for b in names] for a in names]) * sign[:, None] * sign[None, :]
    fig, ax = plt.subplots(figsize=(0.62 * len(names) + 2.4, 0.55 * len(names) + 1.2))
    image = ax.imshow(matrix, cmap="RdBu", vmin=-1, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            text = "" if math.isnan(matrix[i, j]) else f"{matrix[i, j]:+.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.04, label="agreement (Spearman rho, oriented)")
    ax.set_title("do the metrics agree across all trained models?", fontsize=9)
    fig.tight_layout()
    return fig
