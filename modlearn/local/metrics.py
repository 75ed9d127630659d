"""What notebook 02 measures of a local run: accuracy by depth, one row of the results table (test
accuracy, activation memory, time per step), sweeps over K, and seed spread."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from ..api import Run
from ..data import Dataset, Split, iterate_batches
from ..results import seed_summary
from ..train import TrainConfig, evaluate
from .config import MODE_NAMES
from .memory import activation_bytes
from .train import PROBE, LocalExtras, train_modes


@torch.no_grad()
def module_accuracies(run: Run[LocalExtras], split: Split, batch_size: int = 2048) -> list[float]:
    """Accuracy of each module's auxiliary head (a probe for E2E) on `split`; the last is the model's.

    Defined for `e2e`, `greedy` and `dgl`; the kernel method and Forward-Forward have no heads.
    """
    net = run.extras.net
    if net is None:
        raise ValueError(
            f"mode {run.extras.mode!r} has no auxiliary heads per module: use ml.evaluate(run.model, split)"
        )
    device = next(net.parameters()).device
    net.eval()
    correct = torch.zeros(len(net.stages))
    for x, y in iterate_batches(split.x.to(device), split.y.to(device), batch_size, shuffle=False):
        h = x
        for k, (stage, head) in enumerate(zip(net.stages, net.heads, strict=True)):
            h = stage(h)
            correct[k] += (head(h).argmax(dim=1) == y).sum().cpu()
    return (correct / len(split)).tolist()


def seconds_per_step(run: Run[LocalExtras]) -> float:
    """Training wall-clock per optimizer step (validation included) of the fits that train the
    network, from their histories; E2E's probes, which only measure it, are left out."""
    trains = [h for name, h in run.histories.items() if not name.startswith(PROBE)]
    steps = sum(h.num_steps for h in trains)
    return sum(row["seconds"] for h in trains for row in h.epochs) / max(1, steps)


def measure(run: Run[LocalExtras], data: Dataset, batch_size: int = 128) -> dict[str, float]:
    """One row of the results table: test accuracy of `run.model`, activation bytes of one step of
    its mode on `batch_size` training samples, seconds per step (`seconds_per_step`)."""
    model = run.extras.block_model
    device = next(model.parameters()).device
    batch = (data.train.x[:batch_size].to(device), data.train.y[:batch_size].to(device))
    return {
        "test_acc": evaluate(run.model, data)["acc"],
        "activation_bytes": activation_bytes(model, batch, run.extras.config, data.num_classes),
        "seconds_per_step": seconds_per_step(run),
    }


def sweep_modules(
    model: nn.Module,
    data: Dataset,
    module_counts: Sequence[int],
    modes: Sequence[str] = ("greedy", "dgl"),
    train: TrainConfig | None = None,
    aux_head: str = "linear",
) -> dict[int, dict[str, dict[str, float]]]:
    """Train a copy of `model` with each mode at each K; `{K: {mode: measure(...) row}}`."""
    return {
        k: {
            mode: measure(run, data)
            for mode, run in train_modes(model, data, modes, train, num_modules=k, aux_head=aux_head).items()
        }
        for k in module_counts
    }


def compare_seeds(a: Sequence[float], b: Sequence[float], names: tuple[str, str]) -> str:
    """`"<a> higher"`, `"<b> higher"` or `"not distinguishable"` for two methods' per-seed scores.

    The means are distinguishable when they differ by more than twice the standard error of their
    difference, `2 * sqrt(sd_a**2 / n_a + sd_b**2 / n_b)`; with fewer than two seeds each the spread
    is unknown and the answer is `"one seed: spread not measured"`.
    """
    if min(len(a), len(b)) < 2:
        return "one seed: spread not measured"
    (mean_a, sd_a), (mean_b, sd_b) = seed_summary(a), seed_summary(b)
    if abs(mean_a - mean_b) <= 2 * (sd_a**2 / len(a) + sd_b**2 / len(b)) ** 0.5:
        return "not distinguishable"
    return f"{names[0] if mean_a > mean_b else names[1]} higher"


def format_comparison(rows: dict[str, dict[str, float]], baseline: str = "e2e") -> str:
    """A text table of `measure` rows, with memory also as a ratio to the `baseline` row."""
    base = rows[baseline]["activation_bytes"] if baseline in rows else None
    lines = [f"{'method':<22}{'test acc':>10}{'activations/step':>18}{'vs E2E':>8}{'ms/step':>9}"]
    for mode, row in rows.items():
        ratio = f"{row['activation_bytes'] / base:.2f}x" if base else "-"
        lines.append(
            f"{MODE_NAMES.get(mode, mode):<22}{row['test_acc']:>10.3f}"
            f"{row['activation_bytes'] / 1024:>15.0f} KB{ratio:>8}{1000 * row['seconds_per_step']:>9.1f}"
        )
    return "\n".join(lines)
