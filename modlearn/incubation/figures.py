"""Notebook 03's pictures: the hybrids as rows of stage boxes, where a hybrid's gradient flows, each
incubation's validation curve, and incubation + fine-tuning against E2E at the same budget."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from ..train import History

_META_COLOR, _TARGET_COLOR = "#b8c4d6", "#f2a65a"


def plot_hybrids(num_stages: int = 4) -> Figure:
    """The meta model, the K hybrids and the assembled target as rows of stage boxes."""
    rows = [("meta model (pretrained)", [False] * num_stages)]
    rows += [
        (f"hybrid {i}: incubate stage {i}", [j == i for j in range(num_stages)]) for i in range(num_stages)
    ]
    rows += [("assembled target", [True] * num_stages)]
    fig, ax = plt.subplots(figsize=(2.0 + 1.6 * num_stages, 0.55 * len(rows) + 0.6))
    for r, (label, is_target) in enumerate(rows):
        y = len(rows) - 1 - r
        ax.text(-0.15, y, label, ha="right", va="center", fontsize=9)
        for j, target in enumerate(is_target):
            width = 1.3 if target else 0.6
            color = _TARGET_COLOR if target else _META_COLOR
            ax.add_patch(plt.Rectangle((j * 1.5, y - 0.3), width, 0.6, color=color))
            text = f"target {j}" if target else f"meta {j}"
            ax.text(j * 1.5 + width / 2, y, text, ha="center", va="center", fontsize=8)
    ax.set_xlim(-0.2, 1.5 * num_stages)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.axis("off")
    ax.set_title(
        "grey: meta stage (frozen, 1 block) · orange: target stage (trained, several blocks)", fontsize=9
    )
    fig.tight_layout()
    return fig


def plot_stage_gradients(grads: dict[str, list[float]], index: int) -> Figure:
    """Per stage of hybrid `index`: the gradient reaching its output, and the gradient on its weights."""
    k = len(grads["output_grad"])
    names = [f"target {j}" if j == index else f"meta {j}" for j in range(k)]
    colors = [_TARGET_COLOR if j == index else _META_COLOR for j in range(k)]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    titles = {
        "output_grad": "gradient reaching the stage output",
        "weight_grad": "gradient on the stage weights",
    }
    for ax, (key, title) in zip(axes, titles.items(), strict=True):
        bars = ax.bar(names, grads[key], color=colors)
        ax.bar_label(bars, labels=["0" if g == 0 else f"{g:.2g}" for g in grads[key]], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("norm")
    fig.suptitle(f"hybrid {index}: one backward pass of the task loss", fontsize=10)
    fig.tight_layout()
    return fig


def plot_incubation(histories: dict[int, History], meta_val_acc: float | None = None) -> Figure:
    """Validation accuracy of each hybrid during its incubation (one curve per stage), and the meta
    model's validation accuracy `meta_val_acc` as a dashed line (validation only: no test values)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for i in sorted(histories):
        rows = [r for r in histories[i].epochs if "val_acc" in r]
        ax.plot([r["step"] for r in rows], [r["val_acc"] for r in rows], label=f"incubating stage {i}")
    if meta_val_acc is not None:
        ax.axhline(meta_val_acc, color="grey", ls="--", label="meta model (val)")
    ax.set_xlabel("incubation step")
    ax.set_ylabel("hybrid val accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_budget_curves(
    e2e: History, finetune: History, incubation_steps: int, assembled_val_acc: float
) -> Figure:
    """Validation accuracy against updates of every target block: E2E vs incubation + fine-tuning,
    which starts at the assembled model's validation accuracy `assembled_val_acc`."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    e2e_rows = [r for r in e2e.epochs if "val_acc" in r]
    ax.plot([r["step"] for r in e2e_rows], [r["val_acc"] for r in e2e_rows], label="E2E")
    ft_rows = [r for r in finetune.epochs if "val_acc" in r]
    ax.plot(
        [incubation_steps] + [incubation_steps + r["step"] for r in ft_rows],
        [assembled_val_acc] + [r["val_acc"] for r in ft_rows],
        "o-",
        ms=3,
        label="assembled, then fine-tuned",
    )
    ax.axvspan(
        0, incubation_steps, color=_TARGET_COLOR, alpha=0.15, label="incubation (each stage separately)"
    )
    ax.set_xlabel("updates of every target block")
    ax.set_ylabel("val accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
