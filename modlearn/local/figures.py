"""Notebook 02's pictures: the survey's map, accuracy by depth, and the sweep over the number of modules."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from .config import MODE_NAMES


def plot_module_accuracies(curves: dict[str, Sequence[float]], title: str | None = None) -> Figure:
    """Test accuracy of each module's head (probe for E2E), one line per method. Returns the figure."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for mode, accs in curves.items():
        ax.plot(range(1, len(accs) + 1), accs, "o-", label=MODE_NAMES.get(mode, mode))
    ax.set_xlabel("module k (its head's accuracy)")
    ax.set_ylabel("test accuracy")
    ax.set_xticks(range(1, max(len(a) for a in curves.values()) + 1))
    ax.legend(fontsize=8)
    ax.set_title(title or "accuracy by depth")
    fig.tight_layout()
    return fig


_ROWS = [  # (label, family, per-module backward?, frozen earlier modules?, aux heads?)
    ("E2E backprop", "global forward + global backward", False, False, False),
    ("DGL (decoupled greedy)", "weakly modular: global forward, local backward", True, False, True),
    ("Forward-Forward", "weakly modular: forward passes only, local goodness", True, False, False),
    ("greedy sequential / kernel", "fully modular: one module at a time, then frozen", True, True, True),
]


def plot_taxonomy(num_modules: int = 3) -> Figure:
    """The survey's map as a diagram: where the forward (black) and backward (red) passes go."""
    fig, ax = plt.subplots(figsize=(10, 4.6))
    ax.set_xlim(0, 10.5)
    ax.set_ylim(-0.8, 4.0)
    ax.axis("off")
    for row, (label, family, local, frozen, heads) in enumerate(_ROWS):
        y = 3.3 - row * 1.1
        ax.text(0.0, y + 0.55, f"{label}  ·  {family}", fontsize=9, weight="bold")
        xs = [1.0 + 2.1 * k for k in range(num_modules)]
        for k, x in enumerate(xs):
            gray = frozen and k < num_modules - 1
            ax.add_patch(
                plt.Rectangle((x, y), 1.4, 0.4, facecolor="#dddddd" if gray else "#cfe2f3", edgecolor="black")
            )
            ax.text(
                x + 0.7,
                y + 0.2,
                f"module {k + 1}" + (" (frozen)" if gray else ""),
                ha="center",
                va="center",
                fontsize=7,
            )
            start = 0.35 if k == 0 else xs[k - 1] + 1.4
            ax.annotate("", (x, y + 0.2), (start, y + 0.2), arrowprops=dict(arrowstyle="->", color="black"))
            if local:
                target = "aux head" if heads else "goodness"
                ax.annotate(
                    "",
                    (x + 0.7, y - 0.05),
                    (x + 0.7, y - 0.3),
                    arrowprops=dict(arrowstyle="->", color="crimson"),
                )
                ax.text(x + 0.75, y - 0.28, f"{target} {k + 1}: loss", fontsize=6.5, color="crimson")
        end = xs[-1] + 1.4
        ax.annotate("", (end + 0.6, y + 0.2), (end, y + 0.2), arrowprops=dict(arrowstyle="->", color="black"))
        ax.text(end + 0.65, y + 0.2, "output", va="center", fontsize=7)
        if not local:
            ax.annotate(
                "",
                (xs[0], y - 0.15),
                (end + 0.6, y - 0.15),
                arrowprops=dict(arrowstyle="->", color="crimson", lw=1.5),
            )
            ax.text(
                end + 0.65,
                y - 0.15,
                "one loss, gradient through every module",
                fontsize=6.5,
                color="crimson",
                va="center",
            )
    ax.text(
        0.0,
        -0.7,
        "black: forward pass   red: where gradients flow (a red arrow that stops at a module "
        "boundary = no global backward pass)",
        fontsize=8,
    )
    fig.tight_layout()
    return fig


def plot_sweep(sweep: dict[int, dict[str, dict[str, float]]], highlight: int | None = None) -> Figure:
    """Test accuracy and activation memory against the number of modules K, one line per mode."""
    fig, (acc_ax, mem_ax) = plt.subplots(1, 2, figsize=(10, 3.3))
    counts = sorted(sweep)
    for mode, style in zip(sweep[counts[0]], ("o-", "s--", "^:"), strict=False):
        for ax, key, scale in ((acc_ax, "test_acc", 1.0), (mem_ax, "activation_bytes", 1 / 1024)):
            ax.plot(
                counts, [sweep[k][mode][key] * scale for k in counts], style, label=MODE_NAMES.get(mode, mode)
            )
    for ax, ylabel in ((acc_ax, "test accuracy"), (mem_ax, "activations per step (KB)")):
        if highlight is not None:
            ax.axvline(highlight, color="gray", ls="--", lw=1)
        ax.set_xlabel("number of modules K")
        ax.set_ylabel(ylabel)
        ax.set_xticks(counts)
        ax.legend(fontsize=8)
    if highlight in sweep:
        row = " | ".join(
            f"{MODE_NAMES.get(m, m)}: acc {r['test_acc']:.3f}, {r['activation_bytes'] / 1024:.0f} KB"
            for m, r in sweep[highlight].items()
        )
        fig.suptitle(f"K = {highlight}: {row}", fontsize=9)
    fig.tight_layout()
    return fig
