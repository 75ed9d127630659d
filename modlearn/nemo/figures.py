"""Pictures of masks and frontiers (each function returns the Figure).

Part of `modlearn.nemo` (its package docstring names the papers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def class_order(masks: torch.Tensor) -> torch.Tensor:
    """Units of a bool `(classes, units)` mask ordered by the first class they belong to (units of no
    class last), so each class's units form a block: `(units,)` indices."""
    classes, units = masks.shape
    first = torch.where(masks.any(dim=0), masks.float().argmax(dim=0), torch.full((units,), classes))
    return torch.sort(first, stable=True).indices


def plot_class_masks(
    class_masks: dict[str, dict[str, torch.Tensor]], layers: Sequence[str] | None = None
) -> Figure:
    """Heat-maps of the class masks: one row per method, one column per layer; rows of a panel are
    classes, columns the layer's units sorted by the first class they belong to (dark = belongs)."""
    names = list(class_masks)
    layers = list(layers or next(iter(class_masks.values())))
    fig, axes = plt.subplots(
        len(names), len(layers), figsize=(3.2 * len(layers), 1.9 * len(names)), squeeze=False
    )
    for r, name in enumerate(names):
        for c, layer in enumerate(layers):
            ax, m = axes[r, c], class_masks[name][layer]
            m = m[:, class_order(m)].float().numpy()
            ax.imshow(m, aspect="auto", cmap="Greys", vmin=0, vmax=1, interpolation="nearest")
            ax.grid(False)
            ax.set_yticks(range(m.shape[0]))
            ax.tick_params(labelsize=6)
            ax.set_title(f"{name} · {layer} ({m.mean():.0%} on)", fontsize=8)
            ax.set_xlabel(f"units of {layer}, sorted by class", fontsize=7)
            if c == 0:
                ax.set_ylabel("class", fontsize=8)
    fig.tight_layout()
    return fig


def plot_frontier(
    frontiers: dict[str, list[list[dict[str, float]]]],
    size: str = "weight_retention",
    accuracy: str = "test_acc",
    target: float | None = None,
    title: str | None = None,
) -> Figure:
    """Module accuracy against module size: `frontiers[method]` holds one point list per seed (one
    point per threshold, from `threshold_sweep`); a dashed line marks the `target` accuracy."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for i, (method, runs) in enumerate(frontiers.items()):
        for k, points in enumerate(runs):
            points = sorted(points, key=lambda point: point[size])
            ax.plot(
                [point[size] for point in points],
                [point[accuracy] for point in points],
                "o-",
                color=f"C{i}",
                alpha=0.6,
                linewidth=1,
                markersize=3,
                label=method if k == 0 else None,
            )
    if target is not None:
        ax.axhline(target, color="grey", linestyle="--", linewidth=1, label=f"target {target:.3f}")
    ax.set_xlabel(size.replace("_", " "))
    ax.set_ylabel(accuracy.replace("_", " ") + " on the sub-task")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_tradeoff(
    points: dict[float, dict[str, float]],
    x: str = "weight_retention",
    ys: Sequence[str] = ("module_acc", "full_acc"),
    title: str | None = None,
) -> Figure:
    """Accuracies (`ys`, e.g. the module as cut and the full model) against module size, one point per
    alpha; points are labelled with their alpha."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    xs = [p[x] for p in points.values()]
    for y in ys:
        ax.plot(xs, [p[y] for p in points.values()], "o", label=y.replace("_", " "))
    for alpha, px in zip(points, xs, strict=True):
        ax.annotate(
            f"α={alpha:g}", (px, points[alpha][ys[0]]), textcoords="offset points", xytext=(4, 4), fontsize=8
        )
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel("accuracy on the sub-task")
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
