"""Matplotlib figures shared by every notebook. Functions return the `Figure`; none calls `show()`.

Figures take plain tensors, arrays and histories; this module imports nothing from `modlearn`
but `models` (the `SpatialMLP` contract), so `train` and every method module may draw with it.
Introduced in `tutorials/01_e2e_backprop.ipynb`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import matplotlib.pyplot as plt
import numpy as np
import torch

from .models import SpatialMLP, squared_edges

if TYPE_CHECKING:
    from matplotlib.animation import FuncAnimation
    from matplotlib.figure import Figure


class History(Protocol):
    """What the curves read from a `train.History`: per-step lists `steps[key]` (`loss`, maybe
    `acc`), one dict per epoch (`step`, `epoch`, `val_loss`, ...) and the number of steps."""

    steps: dict[str, list[float]]
    epochs: list[dict[str, float]]

    @property
    def num_steps(self) -> int: ...


class Movie(Protocol):
    """A training movie such as `bimt.Snapshots`: `steps[i]` and the model at snapshot `i`."""

    steps: list[int]

    def __len__(self) -> int: ...

    def model_at(self, index: int) -> SpatialMLP: ...


class CoclusterLabels(Protocol):
    """Co-cluster labels of one layer such as `cluster.Coclusters`: `rows: (out,)`, `cols: (in,)`."""

    rows: torch.Tensor
    cols: torch.Tensor

    def sizes(self) -> list[tuple[int, int]]: ...


def smooth(values: Sequence[float], window: int) -> np.ndarray:
    """Moving average over `window` points (shorter at the start)."""
    values = np.asarray(values, dtype=float)
    if window <= 1 or len(values) < 2:
        return values
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    idx = np.arange(1, len(values) + 1)
    lo = np.maximum(0, idx - window)
    return (cumsum[idx] - cumsum[lo]) / (idx - lo)


def label_axes(ax, xlabel: str, ylabel: str, title: str | None = None, legend: bool = True) -> None:
    """Axis labels, an optional title and a small legend (when anything is labelled)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if legend and ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def plot_history(
    history: History, title: str | None = None, ax_loss=None, label: str | None = None
) -> Figure:
    """Training loss per step (smoothed) with validation loss/accuracy per epoch."""
    has_acc = "acc" in history.steps
    if ax_loss is None:
        fig, axes = plt.subplots(1, 2 if has_acc else 1, figsize=(10 if has_acc else 5, 3.2), squeeze=False)
        axes = axes[0]
    else:
        axes, fig = [ax_loss], ax_loss.figure
    steps = np.arange(1, history.num_steps + 1)
    window = max(1, history.num_steps // 50)
    epoch_steps = [row["step"] for row in history.epochs]
    for ax, key, name in zip(axes, ("loss", "acc"), ("loss", "accuracy"), strict=False):
        (line,) = ax.plot(
            steps, smooth(history.steps[key], window), alpha=0.8, label=f"{label + ' ' if label else ''}train"
        )
        val = [row.get(f"val_{key}") for row in history.epochs]
        if any(v is not None for v in val):
            ax.plot(
                epoch_steps, val, "o--", color=line.get_color(), label=f"{label + ' ' if label else ''}val"
            )
        label_axes(ax, "step", name)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def compare_histories(
    histories: dict[str, History], key: str = "val_acc", title: str | None = None
) -> Figure:
    """One curve per run: `key` per epoch (e.g. validation accuracy of several methods)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for name, hist in histories.items():
        xs = [row["epoch"] for row in hist.epochs if key in row]
        ax.plot(xs, [row[key] for row in hist.epochs if key in row], "o-", label=name)
    label_axes(ax, "epoch", key, title)
    fig.tight_layout()
    return fig


def image_grid(
    images: torch.Tensor,
    labels: Sequence[int] | None = None,
    predictions: Sequence[int] | None = None,
    ncols: int = 8,
    class_names=None,
) -> Figure:
    """Images `(n, C, H, W)` in a grid; titles show label (and prediction, red when wrong)."""
    images = images.detach().float().cpu()
    n = len(images)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(1.3 * ncols, 1.45 * nrows), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        img = images[i]
        img = (img - img.min()) / (img.max() - img.min() + 1e-8)
        ax.imshow(img.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray" if img.shape[0] == 1 else None)
        if labels is not None:
            text = _class_name(int(labels[i]), class_names)
            wrong = predictions is not None and int(predictions[i]) != int(labels[i])
            if predictions is not None:
                text += f" / {_class_name(int(predictions[i]), class_names)}"
            ax.set_title(text, fontsize=8, color="crimson" if wrong else "black")
    fig.tight_layout()
    return fig


def _class_name(label: int, class_names: Sequence[str] | None) -> str:
    return class_names[label] if class_names else str(label)


def confusion_matrix(
    y_true: Sequence[int],
    y_pred: Sequence[int],
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Figure:
    """Counts of (true, predicted) class pairs as a heat-map with the counts written in."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = num_classes or int(max(y_true.max(), y_pred.max()) + 1)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    fig, ax = plt.subplots(figsize=(4.6, 4.0))
    ax.imshow(counts, cmap="Blues")
    ax.grid(False)
    for (i, j), c in np.ndenumerate(counts):
        if c:
            ax.text(
                j,
                i,
                str(c),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if c > counts.max() / 2 else "black",
            )
    names = list(class_names) if class_names else [str(i) for i in range(k)]
    ax.set_xticks(range(k), names, rotation=90 if max(map(len, names)) > 2 else 0)
    ax.set_yticks(range(k), names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"accuracy {np.trace(counts) / counts.sum():.3f}")
    fig.tight_layout()
    return fig


def bar_table(values: dict[str, float], ylabel: str, title: str | None = None) -> Figure:
    """Bars for a few named numbers (e.g. accuracy of each method)."""
    fig, ax = plt.subplots(figsize=(1.1 * len(values) + 2, 3))
    bars = ax.bar(list(values), list(values.values()), color="tab:blue")
    ax.bar_label(bars, fmt="%.3g", fontsize=8)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- BIMT networks (notebook 06)


def _edge_segments(model: SpatialMLP, edge_mask, threshold: float):
    """Segments, |w| (relative to each layer's max), sign and kept-flag of every drawn wire."""
    segments, strength, positive, kept = [], [], [], []
    for l, linear in enumerate(model.linears):
        w = linear.weight.detach().float().cpu()
        rel = w.abs() / w.abs().max().clamp_min(1e-12)
        rows, cols = (rel > threshold).nonzero(as_tuple=True)
        start, end = model.coords(l)[cols], model.coords(l + 1)[rows]
        segments.append(torch.stack([start, end], dim=1).numpy())
        strength.append(rel[rows, cols].numpy())
        positive.append((w[rows, cols] > 0).numpy())
        mask = edge_mask[l].cpu() if edge_mask is not None else torch.ones_like(w, dtype=torch.bool)
        if mask.shape != w.shape:
            raise ValueError(f"edge_mask[{l}] has shape {tuple(mask.shape)}, expected {tuple(w.shape)}")
        kept.append(mask[rows, cols].numpy())
    return [np.concatenate(parts) for parts in (segments, strength, positive, kept)]


def draw_network(
    model: SpatialMLP,
    ax=None,
    edge_mask: Sequence[torch.Tensor] | None = None,
    title: str | None = None,
    threshold: float = 0.01,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    linewidth: float = 2.5,
) -> Figure:
    """A `SpatialMLP` (e.g. `bimt.BioMLP`) drawn in its geometry.

    One `LineCollection` of wires (width and opacity ~ |w|,
    blue positive, red negative), neurons as dots, inputs/outputs labelled in their current places.

    `edge_mask[l]` (bool, shaped like `linears[l].weight`) keeps the wires to show; the others are
    faded grey. Wires below `threshold` x the layer's largest |w| are skipped. Returns the figure.
    """
    from matplotlib.collections import LineCollection

    if ax is None:
        flat = bool((model.coords(0)[:, 1] == model.coords(0)[0, 1]).all())  # a 1-D layout
        _, ax = plt.subplots(figsize=(4, 3.4) if flat else (6.5, 5.5))
    if edge_mask is not None and len(edge_mask) != len(model.linears):
        raise ValueError(
            f"edge_mask has {len(edge_mask)} entries, the model has {len(model.linears)} linears"
        )
    segments, strength, positive, kept = _edge_segments(model, edge_mask, threshold)
    colors = np.zeros((len(segments), 4))
    colors[:, :3] = np.where(positive[:, None], (0.12, 0.35, 0.75), (0.85, 0.15, 0.15))
    colors[:, 3] = 0.15 + 0.85 * strength
    colors[~kept] = (0.6, 0.6, 0.6, 0.08)
    order = np.argsort(kept.astype(float) + strength)  # strong, kept wires on top
    ax.add_collection(
        LineCollection(segments[order], linewidths=(linewidth * strength)[order] + 0.1, colors=colors[order])
    )
    small = max(model.widths) <= 64
    for l in range(len(model.widths)):
        xy = model.coords(l).numpy()
        ax.scatter(xy[:, 0], xy[:, 1], s=12 if small else 2, color="black", zorder=3)
    for names, layer, perm, offset in (
        (input_names, 0, model.in_perm, -0.5),
        (output_names, len(model.widths) - 1, model.out_perm, 0.5),
    ):
        for position, original in enumerate(perm.tolist() if names is not None else []):
            x, y = model.coords(layer)[position].tolist()
            ax.annotate(
                names[original],
                (x, y),
                xytext=(0, 12 * np.sign(offset)),
                textcoords="offset points",
                ha="center",
                va="center",
                fontsize=8,
            )
    ax.autoscale()
    ax.margins(0.08)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=9)
    return ax.figure


def draw_networks(models: dict[str, SpatialMLP], ncols: int = 5, size: float = 3.0, **kwargs) -> Figure:
    """Several networks side by side (e.g. the BIMT ablation grid); titles are the dict keys."""
    nrows = -(-len(models) // ncols)
    fig, axes = plt.subplots(
        nrows,
        min(ncols, len(models)),
        figsize=(size * min(ncols, len(models)), size * 0.9 * nrows),
        squeeze=False,
    )
    for ax in axes.flat[len(models) :]:
        ax.axis("off")
    for ax, (name, model) in zip(axes.flat, models.items(), strict=False):
        draw_network(model, ax=ax, title=name, **kwargs)
    fig.tight_layout()
    return fig


def network_animation(snapshots: Movie, interval: int = 300, **kwargs) -> FuncAnimation:
    """A matplotlib animation of a training movie (`bimt.Snapshots`), one frame per snapshot.

    `HTML(animation_html(anim))` shows it in static viewers too, with no request to the network.
    """
    from matplotlib.animation import FuncAnimation

    fig, ax = plt.subplots(figsize=(4, 3.4))

    def frame(index: int):
        ax.clear()
        draw_network(snapshots.model_at(index), ax=ax, title=f"step {snapshots.steps[index]}", **kwargs)
        return []

    anim = FuncAnimation(fig, frame, frames=len(snapshots), interval=interval, blit=False)
    plt.close(fig)
    return anim


# matplotlib's player draws its buttons with an icon font fetched from a CDN; these are triangles and bars,
# which every font has (unlike the media-control symbols)
_PLAYER_ICONS = {
    "fa fa-minus": "\u2212",
    "fa fa-fast-backward": "|\u25c0\u25c0",
    "fa fa-step-backward": "|\u25c0",
    "fa fa-play fa-flip-horizontal": "\u25c0",
    "fa fa-pause": "||",
    "fa fa-play": "\u25b6",
    "fa fa-step-forward": "\u25b6|",
    "fa fa-fast-forward": "\u25b6\u25b6|",
    "fa fa-plus": "+",
}


def animation_html(anim) -> str:
    """`anim.to_jshtml()` (frames embedded, plays without a kernel) made offline: the player's icon-font
    stylesheet link is dropped and its icons are plain characters."""
    html = re.sub(r"<link[^>]*font-awesome[^>]*>", "", anim.to_jshtml())
    for icon, glyph in _PLAYER_ICONS.items():
        html = html.replace(f'<i class="{icon}"></i>', glyph)
    return html


# -------------------------------------------------------------------------- co-clustered layers (notebook 04)


def block_sort(
    weight: torch.Tensor, clusters: CoclusterLabels, name: str = "W"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`|W|` (kernel norms for conv) with rows and columns sorted by cluster.

    `weight: (out, in)` or `(out, in, kh, kw)`. Returns `(sorted (out, in) array, row order,
    column order)`; the diagonal blocks of a clusterable layer then lie along the diagonal.
    """
    magnitude = squared_edges(weight.detach(), name).sqrt().cpu().numpy()
    rows = np.argsort(clusters.rows.numpy(), kind="stable")
    cols = np.argsort(clusters.cols.numpy(), kind="stable")
    return magnitude[np.ix_(rows, cols)], rows, cols


def cluster_heatmap(
    weight: torch.Tensor, clusters: CoclusterLabels | None = None, title: str | None = None, ax=None
) -> Figure:
    """`|W|` (kernel norms for conv) with rows (outputs) and columns (inputs) sorted by co-cluster
    and the k diagonal blocks outlined; `clusters=None` shows the layer as stored. The title gives
    the share of squared weight inside the blocks (the clusterability C). Returns the figure."""
    from matplotlib.patches import Rectangle

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 3.6))
    if clusters is None:
        ax.imshow(
            squared_edges(weight.detach()).sqrt().cpu().numpy(),
            cmap="magma",
            aspect="auto",
            interpolation="nearest",
        )
        ax.set_title(title or "|W| as stored", fontsize=10)
    else:
        magnitude = block_sort(weight, clusters)[0]
        ax.imshow(magnitude, cmap="magma", aspect="auto", interpolation="nearest")
        r0 = c0 = 0
        inside = 0.0
        for rows, cols in clusters.sizes():
            ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), cols, rows, fill=False, edgecolor="cyan", lw=1.2))
            inside += float((magnitude[r0 : r0 + rows, c0 : c0 + cols] ** 2).sum())
            r0, c0 = r0 + rows, c0 + cols
        c = inside / max(float((magnitude**2).sum()), 1e-30)
        ax.set_title(f"{title + ': ' if title else ''}C = {c:.2f}", fontsize=10)
    ax.grid(False)
    ax.set_xlabel("input neuron")
    ax.set_ylabel("output neuron")
    ax.figure.tight_layout()
    return ax.figure


def cluster_heatmaps(panels: Sequence[tuple[str, torch.Tensor, CoclusterLabels | None]]) -> Figure:
    """Several `cluster_heatmap`s side by side: `panels = [(title, weight, clusters or None), ...]`."""
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.6), squeeze=False)
    for ax, (title, weight, clusters) in zip(axes[0], panels, strict=True):
        cluster_heatmap(weight, clusters, title, ax=ax)
    return fig


def tradeoff_plot(
    points: dict[str, tuple[float, float]],
    baselines: dict[str, float] | None = None,
    xlabel: str = "clusterability C (fitted co-clusters)",
    ylabel: str = "test accuracy",
) -> Figure:
    """One labelled point per run at `(C, accuracy)`; `baselines` draws vertical reference lines."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for name, (x, y) in points.items():
        ax.plot(x, y, "o", ms=8)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8)
    for (name, x), style in zip((baselines or {}).items(), (":", "--", "-."), strict=False):
        ax.axvline(x, color="gray", ls=style, lw=1, label=name)
    if baselines:
        ax.legend(fontsize=8, loc="lower left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    fig.tight_layout()
    return fig
