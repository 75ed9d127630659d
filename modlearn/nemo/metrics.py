"""Module metrics: sizes (weight and unit retention), cohesion, coupling, sub-task accuracy, time.

Part of `modlearn.nemo` (its package docstring names the papers).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn as nn

from ..data import Split, iterate_batches
from ..models import BlockModel
from .masks import Keep, MaskGenerator


def subtask_split(split: Split, classes: Sequence[int]) -> Split:
    """The samples of `classes`, relabelled `0..len(classes)-1` in increasing class order."""
    classes = sorted(int(c) for c in classes)
    lookup = torch.full(
        (max(int(split.y.max()), classes[-1]) + 1,), -1, dtype=torch.long, device=split.y.device
    )
    lookup[classes] = torch.arange(len(classes), device=split.y.device)
    chosen = lookup[split.y] >= 0
    return Split(split.x[chosen], lookup[split.y[chosen]])


def _count_layers(module: nn.Module, size: Callable[[nn.Module], int]) -> int:
    """Sum of `size(layer)` over the Linear/Conv layers of `module`, mask generators excluded."""
    if isinstance(module, MaskGenerator):
        return 0
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        return size(module)
    return sum(_count_layers(child, size) for child in module.children())


def backbone_weights(model: BlockModel) -> int:
    """Weights of the Linear/Conv layers in `model.blocks` (mask generators, biases and head excluded)."""
    return _count_layers(model.blocks, lambda layer: layer.weight.numel())


def layer_parameters(model: nn.Module) -> int:
    """Weights and biases of every Linear/Conv layer of `model`, head included, mask generators excluded
    (what NeMo's code counts as a model's size)."""
    return _count_layers(model, lambda layer: sum(p.numel() for p in layer.parameters()))


def weight_retention(full: nn.Module, module: nn.Module) -> float:
    """Per-block weight retention: backbone weights of `module` / those of `full` (both endpoints kept)."""
    return backbone_weights(module) / backbone_weights(full)


def paper_weight_retention(module: nn.Module, standard: nn.Module) -> float:
    """NeMo's module size: `layer_parameters(module) / layer_parameters(standard)`, against a separately
    trained standard model (all Linear/Conv weights and biases, heads included)."""
    return layer_parameters(module) / layer_parameters(standard)


def unit_retention(keep: Keep) -> float:
    """Mean over masked layers of the fraction of kept units (each layer weighs the same)."""
    return float(np.mean([k.float().mean().item() for k in keep.values()]))


def pooled_unit_retention(keep: Keep) -> float:
    """MwT's kernel retention rate (KRR): kept units / all units, pooled over the masked layers."""
    return float(sum(int(k.sum()) for k in keep.values()) / sum(k.numel() for k in keep.values()))


def _jaccard(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise Jaccard indices of bool rows `a: (n, d)`, `b: (m, d)` -> `(n, m)` (1 when both are empty)."""
    a, b = a.float(), b.float()
    inter = a @ b.T
    union = a.sum(1)[:, None] + b.sum(1)[None, :] - inter
    return torch.where(union > 0, inter / union.clamp_min(1), torch.ones_like(inter))


def _concat(masks: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat(list(masks.values()), dim=-1)


def cohesion(
    masks: dict[str, torch.Tensor],
    y: torch.Tensor,
    class_masks: dict[str, torch.Tensor],
    max_per_class: int = 200,
) -> float:
    """Mean Jaccard index between binary sample masks of the same class, on that class's module units."""
    sample, units, y = _concat(masks), _concat(class_masks), y.cpu()
    scores = []
    for c in range(units.shape[0]):
        rows = sample[y == c][:max_per_class][:, units[c]]
        if len(rows) > 1:
            j = _jaccard(rows, rows)
            scores.append(j[torch.ones_like(j, dtype=torch.bool).triu(1)].mean().item())
    return float(np.mean(scores))


def coupling(class_masks: dict[str, torch.Tensor]) -> float:
    """Mean Jaccard index between the unit sets of different classes' modules (lower = less shared)."""
    units = _concat(class_masks)
    j = _jaccard(units, units)
    return j[torch.ones_like(j, dtype=torch.bool).triu(1)].mean().item()


@torch.no_grad()
def subtask_accuracy(model: nn.Module, split: Split, classes: Sequence[int], restrict: bool = False) -> float:
    """Accuracy on the samples of `classes`.

    A model with `len(classes)` outputs (an extracted module) answers with the position of the class
    in increasing order; a full model answers with the class itself, among all its outputs, or
    among `classes` only with `restrict=True`.
    """
    classes = sorted(int(c) for c in classes)
    sub = subtask_split(split, classes)
    device = next(model.parameters()).device
    model.eval()
    logits = torch.cat(
        [model(x.to(device)).float() for x, _ in iterate_batches(sub.x, sub.y, 1024, shuffle=False)]
    )
    targets = sub.y.cpu()
    if restrict:
        logits = logits[:, classes]
    elif logits.shape[1] != len(classes):
        targets = torch.as_tensor(classes)[targets]
    return (logits.argmax(1).cpu() == targets).float().mean().item()


@torch.no_grad()
def inference_time(model: nn.Module, x: torch.Tensor, repeats: int = 20) -> float:
    """Median seconds of one forward pass on `x` (after a warm-up)."""
    device = next(model.parameters()).device
    model.eval()
    x = x.to(device)
    model(x)
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return float(np.median(times))
