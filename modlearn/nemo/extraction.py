"""Module extraction: class masks, a module's units, and pruning a masked model to a small module.

Part of `modlearn.nemo` (its package docstring names the papers).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
import torch.nn as nn

from ..models import BlockModel, TinyViT
from ..validate import check_float
from .masks import Keep, MaskedLinear, _require_masked, _slice_linear, set_unit_filter


@torch.no_grad()
def collect_masks(model: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> dict[str, torch.Tensor]:
    """Binary masks (`mask > 0`) of every masked layer on inputs `x`: name -> bool `(n, units)`."""
    layers = _require_masked(model)
    device = next(model.parameters()).device
    model.eval()
    chunks: dict[str, list[torch.Tensor]] = {name: [] for name in layers}
    for start in range(0, len(x), batch_size):
        model(x[start : start + batch_size].to(device))
        for name, layer in layers.items():
            chunks[name].append(layer.last_mask.cpu() > 0)
    return {name: torch.cat(parts) for name, parts in chunks.items()}


def class_unit_masks(
    masks: dict[str, torch.Tensor], y: torch.Tensor, num_classes: int, threshold: float = 0.9
) -> dict[str, torch.Tensor]:
    """Units of each class: on for at least `threshold` of its samples -> name -> bool `(classes, units)`.

    As in MwT, when a layer would keep no unit for a class the threshold drops by 0.05 until one survives.
    """
    threshold = check_float("threshold", threshold, 0, 1, owner="class_unit_masks")
    y = y.cpu()
    result = {}
    for name, m in masks.items():
        rows = []
        for c in range(num_classes):
            rate = m[y == c].float().mean(dim=0) if (y == c).any() else torch.zeros(m.shape[1])
            level = threshold
            while not (rate >= level - 1e-9).any() and level > 0:
                level = max(0.0, level - 0.05)
            rows.append(rate >= level - 1e-9)
        result[name] = torch.stack(rows)
    return result


def _check_classes(classes: Sequence[int], num_classes: int) -> list[int]:
    classes = sorted({int(c) for c in classes})
    if not classes:
        raise ValueError("the class set is empty: pick at least one class, e.g. classes=(0, 1)")
    unknown = [c for c in classes if not 0 <= c < num_classes]
    if unknown:
        raise ValueError(f"unknown class(es) {unknown}: classes must lie in 0..{num_classes - 1}")
    return classes


def module_units(class_masks: dict[str, torch.Tensor], classes: Sequence[int]) -> Keep:
    """The units of the module for `classes`: the union (OR) of their class masks."""
    num_classes = next(iter(class_masks.values())).shape[0]
    classes = _check_classes(classes, num_classes)
    return {name: m[classes].any(dim=0) for name, m in class_masks.items()}


class PrunedAttention(nn.Module):
    """Self-attention after pruning: heads keep different numbers of query/key and value dimensions.

    `qk_heads[h]` / `v_heads[h]` index head h's kept q/k and v output columns; `scale` is the full
    model's `1/sqrt(head_dim)`, so the scores are exactly those of the full model with units zeroed.
    """

    def __init__(
        self,
        q: nn.Module,
        k: nn.Module,
        v: nn.Module,
        proj: nn.Module,
        qk_heads: list[list[int]],
        v_heads: list[list[int]],
        scale: float,
    ) -> None:
        super().__init__()
        self.q, self.k, self.v, self.proj = q, k, v, proj
        self.qk_heads, self.v_heads, self.scale = qk_heads, v_heads, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.q(x), self.k(x), self.v(x)
        outs = []
        for qk_idx, v_idx in zip(self.qk_heads, self.v_heads, strict=True):
            scores = q[..., qk_idx] @ k[..., qk_idx].transpose(-1, -2) * self.scale
            outs.append(scores.softmax(dim=-1) @ v[..., v_idx])
        return self.proj(torch.cat(outs, dim=-1))


def _head_indices(keep: torch.Tensor, heads: int) -> list[list[int]]:
    """Positions, in the pruned output, of each head's kept units."""
    keep = keep.cpu()
    position = torch.cumsum(keep.long(), 0) - 1
    return [position[chunk][keep[chunk]].tolist() for chunk in torch.arange(len(keep)).view(heads, -1)]


class ScatterOutputs(nn.Module):
    """A pruned layer writing into the residual stream: `layer` computes the kept units only, which
    land at their positions `index` of a zero vector of width `size`. `x: (..., in)` -> `(..., size)`."""

    def __init__(self, layer: nn.Module, keep: torch.Tensor) -> None:
        super().__init__()
        self.layer, self.size = layer, len(keep)
        self.register_buffer("index", keep.nonzero().flatten())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.layer(x)
        return y.new_zeros(*y.shape[:-1], self.size).index_copy(-1, self.index, y)


def _prune_residual_writer(
    layer: nn.Module, in_keep: torch.Tensor, out_keep: torch.Tensor | None
) -> nn.Module:
    """`proj` or `fc2` reading the kept inputs; when masked, only its kept outputs (scattered back)."""
    if isinstance(layer, MaskedLinear):
        return ScatterOutputs(layer.pruned(in_keep, out_keep), out_keep)
    return _slice_linear(layer, cols=in_keep)


def _prune_vit_block(block: nn.Module, prefix: str, keep: Keep) -> nn.Module:
    block = copy.deepcopy(block)
    attn, heads = block.attn, block.attn.heads
    qk = keep[f"{prefix}.attn.q"] & keep[f"{prefix}.attn.k"]  # a q.k term is 0 when either side is off
    v = keep[f"{prefix}.attn.v"]
    block.attn = PrunedAttention(
        attn.q.pruned(None, qk),
        attn.k.pruned(None, qk),
        attn.v.pruned(None, v),
        _prune_residual_writer(attn.proj, v, keep.get(f"{prefix}.attn.proj")),
        _head_indices(qk, heads),
        _head_indices(v, heads),
        scale=1 / math.sqrt(attn.q.units // heads),
    )
    hidden = keep[f"{prefix}.mlp.fc1"]
    block.mlp.fc1 = block.mlp.fc1.pruned(None, hidden)
    block.mlp.fc2 = _prune_residual_writer(block.mlp.fc2, hidden, keep.get(f"{prefix}.mlp.fc2"))
    return block


def _head_linear_name(head: nn.Module) -> str:
    """Name of the head's final `nn.Linear` inside `head` (`""` when the head is that Linear)."""
    return [n for n, m in head.named_modules() if isinstance(m, nn.Linear)][-1]


def _prune_head(head: nn.Module, in_keep: torch.Tensor | None, classes: list[int]) -> nn.Module:
    """A copy of `head` whose final Linear reads `in_keep` and outputs the logits of `classes`."""
    name = _head_linear_name(head)
    linear = head.get_submodule(name)
    small = _slice_linear(linear, rows=torch.as_tensor(classes, device=linear.weight.device), cols=in_keep)
    if not name:
        return small
    head = copy.deepcopy(head)
    head.set_submodule(name, small)
    return head


def prune_module(model: BlockModel, keep: Keep, classes: Sequence[int]) -> BlockModel:
    """Physically cut the module `keep` out of a masked `model`: a smaller standalone network.

    Every masked layer keeps only its `keep` units (and the next layer only the matching inputs);
    the head keeps the rows of `classes`, in increasing order. With `set_unit_filter(model, keep)`
    the full model gives the same logits on those classes.
    """
    layers = _require_masked(model)
    missing = sorted(set(layers) - set(keep))
    if missing:
        raise ValueError(f"keep has no entry for masked layer(s) {missing}: build it with module_units(...)")
    classes = _check_classes(classes, _num_classes(model))
    pruned = copy.deepcopy(model)
    if isinstance(model, TinyViT):
        for i in range(1, len(model.blocks)):
            if f"blocks.{i}.attn.q" in layers:
                pruned.blocks[i] = _prune_vit_block(model.blocks[i], f"blocks.{i}", keep)
        pruned.head = _prune_head(model.head, None, classes)
    else:
        previous = None
        for name, layer in layers.items():
            pruned.set_submodule(name, layer.pruned(previous, keep[name]))
            previous = keep[name]
        pruned.head = _prune_head(model.head, previous, classes)
    set_unit_filter(pruned, None)
    return pruned.eval()


def extract_module(
    model: BlockModel, class_masks: dict[str, torch.Tensor], classes: Sequence[int]
) -> BlockModel:
    """The pruned module of a trained masked `model` for `classes` (union of their class masks)."""
    return prune_module(model, module_units(class_masks, classes), classes)


def _num_classes(model: BlockModel) -> int:
    return model.head.get_submodule(_head_linear_name(model.head)).out_features
