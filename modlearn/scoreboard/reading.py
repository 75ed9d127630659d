"""How the scoreboard reads a trained model: its weight layers, which units fire, a module cut out of
it at matched accuracy, and its ACDC circuit problem.

Every scored model is an MLP-like `BlockModel` (`blocks`, `head`; BIMT's and L1's `BioMLP`s are
folded back with `bimt.to_mlp`), a masked MLP (MwT, NeMo) or Forward-Forward's goodness classifier
(`layers`) over the MLP's blocks; the three kinds are read alike.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn as nn

from ..circuits import LinearNet, PatchingProblem, class_batches
from ..data import Dataset, Split
from ..local import ForwardForwardNet
from ..nemo import (
    MaskedLinear,
    MaskGenerator,
    class_unit_masks,
    module_at_matched_accuracy,
    module_units,
    subtask_accuracy,
)

CLASSES = (3, 5, 8)
"""The class set whose module size is measured (notebook 05's module)."""
CIRCUIT_CLASS = 3
"""The class whose ACDC circuit is measured (clean inputs of it, corrupted inputs of other classes)."""
CIRCUIT_BATCH = 32
THRESHOLDS = (0.99, 0.95, 0.9, 0.8, 0.7, 0.5, 0.3, 0.2, 0.1, 0.05, 0.0)
"""Module extraction thresholds tried (NeMo's rule), largest (smallest module) first."""
TOLERANCE = 0.02
"""Matched accuracy: a module counts when its sub-task accuracy is within this of its full model's."""


def weight_layers(model: nn.Module) -> list[str]:
    """Names of the Linear layers inside `model`'s blocks (`blocks` or, Forward-Forward, `layers`),
    in order; NeMo's mask generators are skipped (their weights compute masks, not features)."""
    generated = {id(m) for g in model.modules() if isinstance(g, MaskGenerator) for m in g.modules()}
    names = [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and id(m) not in generated and name.split(".")[0] in ("blocks", "layers")
    ]
    if not names:
        raise ValueError(
            f"score(model=<{type(model).__name__}>): model must have Linear layers in `blocks` "
            "(or `layers`); build it with ml.make_model('mlp', ...)"
        )
    return names


def weight_tensors(model: nn.Module) -> list[torch.Tensor]:
    """The weights of `weight_layers(model)`, in order: `(out, in)` each."""
    return [model.get_submodule(name).weight for name in weight_layers(model)]


def _blocks(model: nn.Module) -> nn.ModuleList:
    """The hidden blocks: `layers` of a Forward-Forward classifier, `blocks` otherwise."""
    return model.layers if isinstance(model, ForwardForwardNet) else model.blocks


@torch.no_grad()
def unit_activity(model: nn.Module, split: Split) -> dict[str, torch.Tensor]:
    """Per hidden block, whether each unit's output is non-zero on each sample: name -> bool
    `(n, units)`. For MwT/NeMo a unit is on only where its mask is on; Forward-Forward reads each
    sample with its own label written in (its positive pass)."""
    device = next(model.parameters()).device
    x, y = split.x.to(device), split.y.to(device)
    model.eval()
    h, activity = x, {}
    if isinstance(model, ForwardForwardNet):
        h = model.overlay(x, y)
    for i, block in enumerate(_blocks(model)):
        h = ForwardForwardNet.layer_step(block, h) if isinstance(model, ForwardForwardNet) else block(h)
        activity[f"block{i}"] = (h.flatten(1) != 0).cpu()
    return activity


@contextlib.contextmanager
def units_kept(model: nn.Module, keep: Mapping[str, torch.Tensor]) -> Iterator[nn.Module]:
    """`model` with every hidden unit outside `keep` (`unit_activity`'s names -> bool `(units,)`)
    switched off: the module cut out of it, simulated in place."""
    handles = []
    for i, block in enumerate(_blocks(model)):
        scale = keep[f"block{i}"].float().to(next(model.parameters()).device)
        handles.append(block.register_forward_hook(lambda _m, _i, out, s=scale: out * s))
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


def retained_weights(keep: Mapping[str, torch.Tensor], widths: Sequence[int]) -> float:
    """Per-block weight retention of a module (NeMo's size): weights whose two endpoints are kept,
    over all the blocks' weights; `widths` are the layer widths, input first, the inputs all kept."""
    kept = [widths[0]] + [int(k.sum()) for k in keep.values()]
    total = sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    return sum(a * b for a, b in zip(kept[:-1], kept[1:], strict=True)) / total


def module_sweep(
    model: nn.Module,
    data: Dataset,
    classes: Sequence[int] = CLASSES,
    thresholds: Sequence[float] = THRESHOLDS,
) -> list[dict[str, float]]:
    """NeMo's extraction applied to the units' outputs: for each threshold, the module of `classes`
    (union of the classes' units that are on for at least that fraction of their training samples,
    `nemo.class_unit_masks`), its weight retention, and its training and test accuracy on the
    sub-task, cut without fine-tuning (the papers fine-tune; the scoreboard measures the network)."""
    activity = unit_activity(model, data.train)
    weights = weight_tensors(model)
    widths = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    points = []
    for threshold in thresholds:
        keep = module_units(class_unit_masks(activity, data.train.y, data.num_classes, threshold), classes)
        with units_kept(model, keep):
            points.append(
                {
                    "threshold": threshold,
                    "weight_retention": retained_weights(keep, widths),
                    "train_acc": subtask_accuracy(model, data.train, classes, restrict=True),
                    "test_acc": subtask_accuracy(model, data.test, classes, restrict=True),
                }
            )
    return points


def matched_module(model: nn.Module, data: Dataset) -> dict[str, float]:
    """The smallest module of `CLASSES` whose training sub-task accuracy is within `TOLERANCE` of
    the full model's (matched accuracy, `nemo.module_at_matched_accuracy`), from `module_sweep`
    (its threshold 0 keeps every unit, so one module always reaches it)."""
    reference = subtask_accuracy(model, data.train, CLASSES, restrict=True)
    points = module_sweep(model, data)
    return module_at_matched_accuracy(points, reference, TOLERANCE, "weight_retention", "train_acc")


def masked_linear_net(model: nn.Module) -> LinearNet:
    """A masked MLP (MwT/NeMo) as circuit discovery sees it: its Linear weights, and its masks as
    gates (`circuits.LinearNet`), computed by the mask generators on the clean or corrupted inputs."""
    layers = [next(m for m in block if isinstance(m, (nn.Linear, MaskedLinear))) for block in model.blocks]
    linears = [m.layer if isinstance(m, MaskedLinear) else m for m in layers] + [model.head]
    weights = [lin.weight.detach().double() for lin in linears]
    device = weights[0].device

    def gates(x: torch.Tensor) -> list[torch.Tensor | None]:
        found, h = [], x.to(device).flatten(1)
        for block, layer in zip(model.blocks, layers, strict=True):
            found.append(layer.generator(h) * layer.unit_filter if isinstance(layer, MaskedLinear) else None)
            h = block(h)
        return found

    return LinearNet(
        weights,
        [lin.bias.detach().double() for lin in linears],
        lambda z: torch.relu(z),
        lambda x: x.to(device).flatten(1).double(),
        torch.arange(weights[-1].shape[0], device=device),
        gates,
    )


def circuit_problem(
    model: nn.Module, data: Dataset, label: int = CIRCUIT_CLASS, n: int = CIRCUIT_BATCH
) -> PatchingProblem | None:
    """ACDC's problem for class `label` (notebook 07): `n` clean test inputs of it, `n` corrupted ones
    of other classes, the squared gap of logit `label`. None for Forward-Forward, whose class score
    (the goodness of every layer) is no output neuron of an MLP."""
    if isinstance(model, ForwardForwardNet):
        return None
    masked = any(isinstance(m, MaskedLinear) for m in model.modules())
    clean, corrupt = class_batches(data.test.x, data.test.y, label, n=n)
    return PatchingProblem(masked_linear_net(model) if masked else model, clean, corrupt, output=label)
