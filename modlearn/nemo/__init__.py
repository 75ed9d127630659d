"""Modularizing while training: kernel-level MwT and neuron-level NeMo; module extraction and reuse.

- MwT: Qi, Sun, Gao, Hu, Liang, Yu, "Modularizing while Training: a New Paradigm for Modularizing
  DNN Models", ICSE 2024 (qibinhang/MwT). Per-sample *channel* masks on conv layers, trained with
  cross-entropy + alpha * (1 - same-class cosine) + beta * (different-class cosine).
- NeMo: Bi, Qi, Sun, Gao, Yu, Liang, "Neuron-level modularizing-while-training", arXiv 2508.11348
  (XiaohanBi-Hub/NeMo). Per-sample *neuron* masks on `nn.Linear` layers (so Transformers too),
  trained with cross-entropy + alpha * supervised-contrastive loss on the masks.

A masked layer computes `y = layer(x) * m(x)` where `m(x) >= 0` comes from a small generator fed with
the layer's (pooled) input. After training, a unit belongs to class c when its mask is on for at least
`threshold` of the class-c training samples; the module for a set of classes is the union of theirs,
physically pruned into a smaller standalone network. Introduced in `tutorials/05_nemo.ipynb`.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import skip_init

from .claims import paired_verdict
from .data import Split, iterate_batches
from .env import seed_everything
from .models import CNN, MLP, BlockModel, TinyViT, count_parameters
from .train import CrossEntropy, History, Hook, Objective, TrainConfig, TrainState, evaluate, fit
from .validate import ConfigFields, check_choice, check_float, check_type

Keep = dict[str, torch.Tensor]  # masked-layer name -> bool (units,) kept units
METHODS = ("standard", "mwt", "nemo")


# --------------------------------------------------------------------------- masked layers


class MaskGenerator(nn.Module):
    """`pooled input (batch, in) -> mask (batch, out)`: Linear -> ReLU -> Linear -> tanh -> ReLU.

    The first Linear has no bias; the second's bias starts at 1, so every unit starts switched on
    (mask about tanh(1) = 0.76). `hidden` is `out`, or `out // 2` when `out >= shrink_at` (MwT/NeMo).
    """

    def __init__(self, in_features: int, out_features: int, shrink_at: int) -> None:
        super().__init__()
        hidden = out_features // 2 if out_features >= shrink_at else out_features
        self.fc1 = nn.Linear(in_features, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, out_features)
        for fc in (self.fc1, self.fc2):
            nn.init.kaiming_normal_(fc.weight, nonlinearity="relu")
        nn.init.constant_(self.fc2.bias, 1.0)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return F.relu(torch.tanh(self.fc2(F.relu(self.fc1(pooled)))))

    def pruned(self, in_keep: torch.Tensor, out_keep: torch.Tensor) -> MaskGenerator:
        """A copy reading only the `in_keep` inputs and producing only the `out_keep` units."""
        new = copy.deepcopy(self)
        new.fc1 = _slice_linear(self.fc1, cols=in_keep)
        new.fc2 = _slice_linear(self.fc2, rows=out_keep)
        return new


class MaskedLayer(nn.Module):
    """A layer whose output units are scaled by a per-sample mask from a `MaskGenerator`.

    After each forward, `last_mask: (batch, units)` holds the masks (objectives read them).
    `unit_filter: (units,)` (all ones by default) multiplies the mask: setting entries to 0
    switches units off, which is how a module is simulated inside the full model.
    """

    generator: MaskGenerator
    last_mask: torch.Tensor | None

    def __init__(self, units: int) -> None:
        super().__init__()
        self.units = units
        self.register_buffer("unit_filter", torch.ones(units))
        self.last_mask = None

    def __getstate__(self) -> dict:
        return {**super().__getstate__(), "last_mask": None}  # copies and pickles drop the last batch

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        """The layer input reduced to `(batch, in_features)`."""
        raise NotImplementedError

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        """The unmasked output, units on dimension 1 (conv) or last (linear)."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask = self.generator(self.pool(x)) * self.unit_filter
        self.last_mask = mask
        y = self.compute(x)
        return y * self._broadcast(mask, y)

    def _broadcast(self, mask: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def without_mask(self) -> nn.Module:
        """The plain layer with every unit fully on (the generator dropped)."""
        raise NotImplementedError


class MaskedLinear(MaskedLayer):
    """Neuron masks on an `nn.Linear` (NeMo). `x: (batch, in)` or `(batch, tokens, in)`;
    the generator reads the token-mean of `x`, the same mask scales every token."""

    def __init__(self, linear: nn.Linear, generator: MaskGenerator | None = None) -> None:
        super().__init__(linear.out_features)
        self.layer = linear
        self.generator = generator or MaskGenerator(linear.in_features, linear.out_features, shrink_at=3073)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return x if x.dim() == 2 else x.flatten(1, -2).mean(dim=1)

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)

    def _broadcast(self, mask: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return mask.view(mask.shape[0], *([1] * (y.dim() - 2)), mask.shape[1]).to(y.dtype)

    def without_mask(self) -> nn.Linear:
        return self.layer

    def pruned(self, in_keep: torch.Tensor | None, out_keep: torch.Tensor) -> MaskedLinear:
        device = self.layer.weight.device
        in_keep, out_keep = _all_if_none(in_keep, self.layer.in_features, device), out_keep.to(device)
        return MaskedLinear(
            _slice_linear(self.layer, rows=out_keep, cols=in_keep), self.generator.pruned(in_keep, out_keep)
        ).to(device)


class MaskedConv2d(MaskedLayer):
    """Channel (kernel) masks on a conv (MwT): `BN(conv(x)) * m(x)`, the generator reading the
    global average pool of `x: (batch, C_in, H, W)`."""

    def __init__(
        self, conv: nn.Conv2d, bn: nn.BatchNorm2d | None = None, generator: MaskGenerator | None = None
    ) -> None:
        super().__init__(conv.out_channels)
        self.layer, self.bn = conv, bn if bn is not None else nn.Identity()
        self.generator = generator or MaskGenerator(conv.in_channels, conv.out_channels, shrink_at=128)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))

    def compute(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.layer(x))

    def _broadcast(self, mask: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return mask[:, :, None, None].to(y.dtype)

    def without_mask(self) -> nn.Sequential:
        return nn.Sequential(self.layer, self.bn)

    def pruned(self, in_keep: torch.Tensor | None, out_keep: torch.Tensor) -> MaskedConv2d:
        conv, device = self.layer, self.layer.weight.device
        in_keep, out_keep = _all_if_none(in_keep, conv.in_channels, device), out_keep.to(device)
        small = _uninitialised(
            nn.Conv2d,
            int(in_keep.sum()),
            int(out_keep.sum()),
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            bias=conv.bias is not None,
            device=device,
        )
        small.weight.data = conv.weight.data[out_keep][:, in_keep].clone()
        if conv.bias is not None:
            small.bias.data = conv.bias.data[out_keep].clone()
        bn = _slice_batchnorm(self.bn, out_keep) if isinstance(self.bn, nn.BatchNorm2d) else None
        return MaskedConv2d(small, bn, self.generator.pruned(in_keep, out_keep)).to(device)


def mask_layer(layer: nn.Module, bn: nn.BatchNorm2d | None = None) -> MaskedLayer:
    """Wrap an `nn.Linear` (neuron masks) or `nn.Conv2d` (+ its BatchNorm; channel masks)."""
    if isinstance(layer, nn.Linear):
        return MaskedLinear(layer)
    if isinstance(layer, nn.Conv2d):
        return MaskedConv2d(layer, bn)
    raise ValueError(
        f"cannot mask a {type(layer).__name__}: only nn.Linear (neuron masks) and "
        "nn.Conv2d (channel masks) can be masked"
    )


def masked_model(model: BlockModel, mask_first_layer: bool = False, vit_masks: str = "all") -> BlockModel:
    """A masked copy of an `MLP`, `CNN` or `TinyViT` from `modlearn.models` (weights copied).

    MLP: every hidden Linear; CNN: every conv (its BatchNorm moves inside the mask); TinyViT: every
    Linear of each transformer block (`vit_masks="all"`, as NeMo) or only q, k, v and the MLP's fc1
    (`"qkv_fc1"`: the outputs writing into the residual stream, `proj` and `fc2`, stay unmasked).
    With `mask_first_layer=False` (both reference codes) the first Linear/conv, or the first
    transformer block, stays unmasked. The head and the patch embedding are never masked.
    """
    if not isinstance(model, (MLP, CNN, TinyViT)):
        raise ValueError(
            f"cannot mask a {type(model).__name__}: pass an MLP, CNN or TinyViT from modlearn.models"
        )
    check_choice("vit_masks", vit_masks, VIT_MASKS, owner="masked_model")
    model = copy.deepcopy(model)
    if isinstance(model, TinyViT):
        for block in model.blocks[1 if mask_first_layer else 2 :]:
            names = ("q", "k", "v", "proj") if vit_masks == "all" else ("q", "k", "v")
            for name in names:
                setattr(block.attn, name, mask_layer(getattr(block.attn, name)))
            block.mlp.fc1 = mask_layer(block.mlp.fc1)
            if vit_masks == "all":
                block.mlp.fc2 = mask_layer(block.mlp.fc2)
    else:
        for block in model.blocks[0 if mask_first_layer else 1 :]:
            _mask_sequential(block)
    if not masked_layers(model):
        raise ValueError(
            f"masked_model: this {type(model).__name__} has no layer to mask with "
            f"mask_first_layer={mask_first_layer} (only one hidden layer or block); pass "
            "mask_first_layer=True or a deeper model"
        )
    return model


def _mask_sequential(block: nn.Sequential) -> None:
    layers = list(block)
    for i, layer in enumerate(layers):
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            bn = layers[i + 1] if i + 1 < len(layers) and isinstance(layers[i + 1], nn.BatchNorm2d) else None
            block[i] = mask_layer(layer, bn)
            if bn is not None:
                block[i + 1] = nn.Identity()


def masked_layers(model: nn.Module) -> dict[str, MaskedLayer]:
    """The masked layers of `model` by name, in forward order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, MaskedLayer)}


def _require_masked(model: nn.Module) -> dict[str, MaskedLayer]:
    layers = masked_layers(model)
    if not layers:
        raise ValueError(
            f"{type(model).__name__} has no masked layer: convert it with nemo.masked_model(model)"
        )
    return layers


def set_unit_filter(model: nn.Module, keep: Keep | None) -> None:
    """Switch off every unit outside `keep` (None switches every unit back on)."""
    for name, layer in _require_masked(model).items():
        layer.unit_filter.fill_(1.0)
        if keep is not None:
            layer.unit_filter.copy_(keep[name].to(layer.unit_filter))


# --------------------------------------------------------------------------- losses and objectives


def _pair_cosines(masks: torch.Tensor) -> torch.Tensor:
    """`(batch, units)` -> `(batch, batch)` cosine similarities of the mask vectors."""
    z = F.normalize(masks.to(torch.promote_types(masks.dtype, torch.float32)), dim=1, eps=1e-8)
    return z @ z.T


def cohesion_coupling_losses(masks: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """MwT: `(1 - mean same-class cosine, mean different-class cosine)` over pairs i < j.

    `masks: (batch, units)`, `y: (batch,)`. A term with no pair in the batch is 0.
    """
    cos = _pair_cosines(masks)
    upper = torch.ones_like(cos, dtype=torch.bool).triu(diagonal=1)
    same = (y[:, None] == y[None, :]) & upper
    different = (y[:, None] != y[None, :]) & upper
    zero = cos.new_zeros(())
    cohesion = 1 - cos[same].mean() if same.any() else zero
    coupling = cos[different].mean() if different.any() else zero
    return cohesion, coupling


def _check_tau(tau: float, owner: str) -> float:
    return check_float("tau", tau, 0, low_open=True, owner=owner)


def supervised_contrastive_loss(masks: torch.Tensor, y: torch.Tensor, tau: float = 0.3) -> torch.Tensor:
    """Supervised contrastive loss over the *other* samples (`loss="supcon"`): mean over anchors i of
    `-log( sum_{j != i, y_j = y_i} e^{s_ij/tau} / sum_{j != i} e^{s_ij/tau} )`.

    This is Khosla et al.'s L_in with one positive sum (NeMo's paper formula read literally), not the
    released NeMo code (`released_contrastive_loss`). `s_ij` is the cosine of masks i and j,
    `masks: (batch, units)`, `y: (batch,)`. Anchors with no other sample of their class are skipped
    (0 when none has one).
    """
    tau = _check_tau(tau, "supervised_contrastive_loss")
    n = masks.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=masks.device)
    logits = (_pair_cosines(masks) / tau).masked_fill(eye, float("-inf"))
    positives = (y[:, None] == y[None, :]) & ~eye
    anchors = positives.any(dim=1)
    if not anchors.any():
        return logits.new_zeros(())
    log_all = torch.logsumexp(logits, dim=1)
    log_pos = torch.logsumexp(logits.masked_fill(~positives, float("-inf")), dim=1)
    return (log_all - log_pos)[anchors].mean()


def released_contrastive_loss(masks: torch.Tensor, y: torch.Tensor, tau: float = 0.3) -> torch.Tensor:
    """NeMo's contrastive loss as the released code computes it (`loss="released"`, the default).

    With `P_ij = 1[y_i = y_j]` (the anchor itself included) and `s_ij` the mask cosines:
    `pos_i = sum_j exp(s_ij P_ij / tau)`, `neg_i = sum_j exp(s_ij (1 - P_ij) / tau)`,
    loss = mean over every anchor of `-log((pos_i + eps) / (pos_i + neg_i + eps))`, eps = 1e-8.
    The indicator multiplies the similarity *before* the exponential, so each entry outside a sum
    adds e^0 = 1 to it, and each anchor counts itself as a positive (a class with one sample still
    has an anchor). `masks: (batch, units)`, `y: (batch,)`.
    """
    tau = _check_tau(tau, "released_contrastive_loss")
    sim = _pair_cosines(masks)
    same = (y[:, None] == y[None, :]).to(sim.dtype)
    pos = torch.exp(sim * same / tau).sum(dim=1)
    neg = torch.exp(sim * (1 - same) / tau).sum(dim=1)
    eps = 1e-8
    return -torch.log((pos + eps) / (pos + neg + eps)).mean()


CONTRASTIVE_LOSSES = {"released": released_contrastive_loss, "supcon": supervised_contrastive_loss}
VIT_MASKS = ("all", "qkv_fc1")


class MaskObjective(Objective):
    """Cross-entropy plus `mask_loss` averaged over the masked layers; validation reports CE."""

    def __init__(self) -> None:
        self._ce = CrossEntropy()

    @property
    def task(self) -> Objective:
        return self._ce

    def mask_loss(self, masks: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        raise NotImplementedError

    def __call__(self, model: nn.Module, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        ce, metrics = self._ce(model, batch)
        layers = list(_require_masked(model).values())
        total, logged = ce.new_zeros(()), {}
        for layer in layers:
            loss, parts = self.mask_loss(layer.last_mask, batch[1])
            total = total + loss / len(layers)
            for key, value in parts.items():
                logged[key] = logged.get(key, 0) + value.detach() / len(layers)
        return ce + total, {**metrics, "ce": ce.detach(), **logged}


class MwTObjective(MaskObjective):
    """`CE + alpha * (1 - same-class cosine) + beta * different-class cosine` (MwT, alpha 0.5, beta 1.5)."""

    def __init__(self, alpha: float = 0.5, beta: float = 1.5) -> None:
        super().__init__()
        self.alpha, self.beta = alpha, beta

    def mask_loss(self, masks, y):
        cohesion, coupling = cohesion_coupling_losses(masks, y)
        return self.alpha * cohesion + self.beta * coupling, {
            "cohesion_loss": cohesion,
            "coupling_loss": coupling,
        }


class NeMoObjective(MaskObjective):
    """`CE + alpha * contrastive loss on the masks` (NeMo, alpha 0.5, tau 0.3); `loss` picks
    `CONTRASTIVE_LOSSES[loss]`: `"released"` (the released code) or `"supcon"`."""

    def __init__(self, alpha: float = 0.5, tau: float = 0.3, loss: str = "released") -> None:
        super().__init__()
        self.alpha, self.tau, self.loss = alpha, tau, CONTRASTIVE_LOSSES[loss]

    def mask_loss(self, masks, y):
        loss = self.loss(masks, y, self.tau)
        return self.alpha * loss, {"contrastive_loss": loss}


@dataclass
class ModularConfig:
    """Modularizing-while-training settings with the papers' defaults.

    `method`: `"standard"` (cross-entropy only, the same masked model), `"mwt"` (Qi et al., ICSE 2024:
    alpha 0.5, beta 1.5) or `"nemo"` (Bi et al., arXiv 2508.11348: alpha 0.5, tau 0.3 are the
    trainers' defaults; the released run scripts use tau 0.2 with alpha 1.1-1.3 for CNNs and
    0.06-0.15 for ViTs).
    `loss` (NeMo only): `"released"` reproduces the released code (`released_contrastive_loss`: the
    0/1 class indicator multiplies the similarities before the exponential, the anchor counts
    itself); `"supcon"` sums over the other samples only (`supervised_contrastive_loss`).
    `mask_first_layer=False` leaves the first hidden Linear/conv (the first transformer block of a
    ViT) unmasked, as both reference codes do; `vit_masks="all"` masks every Linear of the other
    transformer blocks as NeMo does, `"qkv_fc1"` only q, k, v and the MLP's fc1.
    `threshold` (0.9) is the fraction of a class's samples on which a unit must be on to belong to it.
    """

    method: str = "nemo"
    alpha: float = 0.5
    beta: float = 1.5
    tau: float = 0.3
    threshold: float = 0.9
    loss: str = "released"
    mask_first_layer: bool = False
    vit_masks: str = "all"

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        fields.choice("method", METHODS)
        fields.number("alpha", 0)
        fields.number("beta", 0)
        fields.number("tau", 0, low_open=True)
        fields.number("threshold", 0, 1)
        fields.choice("loss", tuple(CONTRASTIVE_LOSSES))
        fields.boolean("mask_first_layer")
        fields.choice("vit_masks", VIT_MASKS)

    def objective(self) -> Objective:
        """The training objective for `fit`."""
        if self.method == "mwt":
            return MwTObjective(self.alpha, self.beta)
        if self.method == "nemo":
            return NeMoObjective(self.alpha, self.tau, self.loss)
        return CrossEntropy()


def train_nemo(
    model: BlockModel, data, config: ModularConfig | None = None, train: TrainConfig | None = None
) -> tuple[BlockModel, History]:
    """Mask `model` (a copy) and train it with `config.method`'s objective (NeMo, MwT or standard)
    through `fit`.

    `train` is the loop's config, passed to `fit` unchanged. The mask generators are initialized
    from `train.seed`, so a run repeats exactly.
    """
    check_type("model", model, BlockModel, owner="train_nemo", hint="build it with ml.make_model(...)")
    check_type(
        "config", config, ModularConfig, owner="train_nemo", optional=True, hint="pass a ModularConfig(...)"
    )
    check_type("train", train, TrainConfig, owner="train_nemo", optional=True, hint="pass a TrainConfig(...)")
    config, train = config or ModularConfig(), train or TrainConfig()
    if train.seed is not None:
        seed_everything(train.seed)
    masked = masked_model(model, config.mask_first_layer, config.vit_masks)
    history = fit(masked, data, train, objective=config.objective())
    return masked, history


# --------------------------------------------------------------------------- module extraction


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


def _all_if_none(keep: torch.Tensor | None, n: int, device) -> torch.Tensor:
    return torch.ones(n, dtype=torch.bool, device=device) if keep is None else keep.to(device)


def _uninitialised(layer_class: type[nn.Module], *args, **kwargs) -> nn.Module:
    """`layer_class(*args, **kwargs)` left uninitialised: the pruned layers copy their weights in, and a
    module may keep no unit of a layer, whose empty weights torch warns it cannot initialise."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Initializing zero-element tensors is a no-op", UserWarning)
        return skip_init(layer_class, *args, **kwargs)


def _slice_linear(
    linear: nn.Linear, rows: torch.Tensor | None = None, cols: torch.Tensor | None = None
) -> nn.Linear:
    """A new `nn.Linear` keeping output units `rows` and inputs `cols` (bool or index tensors)."""
    w = linear.weight.data
    rows = _all_if_none(rows, w.shape[0], w.device)
    cols = _all_if_none(cols, w.shape[1], w.device)
    w = w[rows][:, cols]
    new = _uninitialised(nn.Linear, w.shape[1], w.shape[0], bias=linear.bias is not None, device=w.device)
    new.weight.data = w.clone()
    if linear.bias is not None:
        new.bias.data = linear.bias.data[rows].clone()
    return new


def _slice_batchnorm(bn: nn.BatchNorm2d, keep: torch.Tensor) -> nn.BatchNorm2d:
    new = nn.BatchNorm2d(int(keep.sum()), eps=bn.eps, momentum=bn.momentum).to(keep.device)
    for name in ("weight", "bias", "running_mean", "running_var"):
        getattr(new, name).data = getattr(bn, name).data[keep].clone()
    return new


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


# --------------------------------------------------------------------------- metrics


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


def finetune_module(
    module: nn.Module, train: Split, classes: Sequence[int], config: TrainConfig | None = None
) -> History:
    """Short fine-tune of a pruned module on its sub-task (labels relabelled to `0..k-1`)."""
    return fit(module, subtask_split(train, classes), config or TrainConfig(epochs=1, progress=False))


def _num_classes(model: BlockModel) -> int:
    return model.head.get_submodule(_head_linear_name(model.head)).out_features


def reference_module(model: BlockModel, keep: Keep, classes: Sequence[int], seed: int = 0) -> BlockModel:
    """The module as both reference pipelines reuse it, before their fine-tune.

    `model` is pruned to `keep` (`prune_module`), every mask generator is removed (the kept units are
    fully on), and the head keeps all its outputs followed by a new `ReLU -> Linear(num_classes ->
    len(classes))` (initialized from `seed`). `x -> (batch, len(classes))`, classes in increasing order.
    """
    num_classes = _num_classes(model)
    module = prune_module(model, keep, range(num_classes))
    for name, layer in masked_layers(module).items():
        module.set_submodule(name, layer.without_mask())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        new_head = nn.Linear(num_classes, len(_check_classes(classes, num_classes)))
    module.head = nn.Sequential(module.head, nn.ReLU(), new_head.to(next(model.parameters()).device))
    return module


@dataclass
class FinetuneConfig:
    """The module fine-tune of the reference pipelines (MwT's `fine_tune_module`), through `fit`.

    The references run SGD with Nesterov momentum (`optimizer="sgd"`, `momentum`), lr 0.05, 10 epochs,
    batch 128, the rate annealed per epoch by a cosine over `2 * epochs` (it ends at half its start).
    On this series' small MLPs that SGD run collapses the new ReLU head to one class at every rate
    tried (0.05 to 0.002, measured on digits), and Adam at 3e-3 still does for some seeds, so the
    defaults here are Adam at lr 1e-3, batch 32, 30 epochs, with the same cosine. Unlike MwT's code,
    which keeps the epoch best on the *test* set, the epoch kept is the best on the *validation* split.
    """

    epochs: int = 30
    lr: float = 1e-3
    momentum: float = 0.9
    batch_size: int = 32
    seed: int = 0
    optimizer: str = "adam"

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        fields.choice("optimizer", ("sgd", "adam"))
        fields.integer("epochs", 1)
        fields.integer("batch_size", 1)
        fields.integer("seed", 0)
        fields.number("lr", 0, low_open=True)
        fields.number("momentum", 0, 1, high_open=True)


class _KeepBestOnValidation(Hook):
    """Nesterov momentum, the per-epoch cosine, and the state of the epoch best on `val` (ties: earliest)."""

    def __init__(self, val: Split, config: FinetuneConfig) -> None:
        self.val, self.config = val, config
        self.val_acc: list[float] = []
        self.best: dict[str, torch.Tensor] | None = None

    def on_fit_start(self, state: TrainState) -> None:
        if self.config.optimizer == "sgd":
            for group in state.optimizer.param_groups:
                group["nesterov"] = True

    def on_epoch_end(self, state: TrainState) -> None:
        acc = evaluate(state.model, self.val)["acc"]
        state.model.train()
        if not self.val_acc or acc > max(self.val_acc):
            self.best = copy.deepcopy(state.model.state_dict())
        self.val_acc.append(acc)
        scale = (1 + math.cos(math.pi * len(self.val_acc) / (2 * self.config.epochs))) / 2
        for group in state.optimizer.param_groups:
            group["lr"] = self.config.lr * scale


@dataclass
class Finetuned:
    """A fine-tuned module: `val_acc[e]` after epoch e+1; `best_epoch` (1-based) is the one kept."""

    module: nn.Module
    val_acc: list[float]

    @property
    def best_epoch(self) -> int:
        return int(np.argmax(self.val_acc)) + 1


def finetune_reference(
    module: nn.Module, data, classes: Sequence[int], config: FinetuneConfig | None = None
) -> Finetuned:
    """Fine-tune `module` (from `reference_module`) on the sub-task `classes` as the papers do, through `fit`.

    `data` has `.train` and `.val` splits (a `Dataset`); only those two are read: the epoch kept is
    chosen on `data.val`, never on a test split. The module is trained in place and left at that epoch.
    """
    config = config or FinetuneConfig()
    check_type(
        "config", config, FinetuneConfig, owner="finetune_reference", hint="pass a FinetuneConfig(...)"
    )
    hook = _KeepBestOnValidation(subtask_split(data.val, classes), config)
    train = TrainConfig(
        epochs=config.epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        optimizer=config.optimizer,
        momentum=config.momentum,
        seed=config.seed,
        progress=False,
    )
    fit(module, subtask_split(data.train, classes), train, hooks=[hook])
    module.load_state_dict(hook.best)
    return Finetuned(module.eval(), hook.val_acc)


def module_point(
    model: BlockModel,
    keep: Keep,
    classes: Sequence[int],
    data,
    finetune: FinetuneConfig | None = None,
    standard: nn.Module | None = None,
) -> dict[str, float]:
    """Size and accuracy of the module `keep` for `classes`: one point of a frontier.

    As cut (`cut_val_acc`, `cut_test_acc`); after the papers' fine-tune when `finetune` is given
    (`val_acc`, `test_acc`, `best_epoch`, and with a separately trained `standard` model NeMo's
    `paper_weight_retention`); sizes `weight_retention` (per-block weights), `unit_retention` (mean
    per layer) and `pooled_unit_retention` (MwT's KRR).
    """
    cut = prune_module(model, keep, classes)
    point = {
        "cut_val_acc": subtask_accuracy(cut, data.val, classes),
        "cut_test_acc": subtask_accuracy(cut, data.test, classes),
        "weight_retention": weight_retention(model, cut),
        "unit_retention": unit_retention(keep),
        "pooled_unit_retention": pooled_unit_retention(keep),
    }
    if finetune is not None:
        tuned = finetune_reference(
            reference_module(model, keep, classes, finetune.seed), data, classes, finetune
        )
        point.update(
            {
                "val_acc": max(tuned.val_acc),
                "test_acc": evaluate(tuned.module, subtask_split(data.test, classes))["acc"],
                "best_epoch": tuned.best_epoch,
            }
        )
        if standard is not None:
            point["paper_weight_retention"] = paper_weight_retention(tuned.module, standard)
    return point


def threshold_sweep(
    model: BlockModel,
    data,
    classes: Sequence[int],
    thresholds: Sequence[float],
    finetune: FinetuneConfig | None = None,
    standard: nn.Module | None = None,
) -> list[dict[str, float]]:
    """One `module_point` per extraction threshold (class masks from `data.train`): a frontier."""
    masks = collect_masks(model, data.train.x)
    points, seen = [], {}
    for threshold in thresholds:
        keep = module_units(class_unit_masks(masks, data.train.y, _num_classes(model), threshold), classes)
        key = tuple(tuple(k.tolist()) for k in keep.values())
        if key not in seen:  # a threshold that keeps the same units gives the same module
            seen[key] = module_point(model, keep, classes, data, finetune, standard)
        points.append({"threshold": float(threshold), **seen[key]})
    return points


def matched_point(
    points: Sequence[dict[str, float]],
    target: float,
    size: str = "weight_retention",
    accuracy: str = "val_acc",
) -> dict[str, float] | None:
    """The point of smallest `size` whose `accuracy` reaches `target` (None when none does)."""
    reaching = [point for point in points if point[accuracy] >= target]
    return min(reaching, key=lambda point: point[size]) if reaching else None


def retention_at_accuracy(points: Sequence[tuple[float, float]], target: float) -> float:
    """The smallest retention among `(retention, accuracy)` points with accuracy >= `target` (nan if none)."""
    best = matched_point([{"size": r, "acc": a} for r, a in points], target, "size", "acc")
    return math.nan if best is None else best["size"]


@dataclass
class Frontiers:
    """Threshold sweeps of several trainings over seeds, with a separately trained standard model.

    `points[name][s]` is `threshold_sweep`'s list for training `name` and seed `seeds[s]`;
    `standard_val_acc[s]` / `standard_test_acc[s]` are the standard model's sub-task accuracies.
    """

    points: dict[str, list[list[dict[str, float]]]]
    seeds: list[int]
    standard_val_acc: list[float]
    standard_test_acc: list[float]

    def matched(self, tolerance: float, size: str = "weight_retention") -> dict[str, list[dict | None]]:
        """Per training and seed, the smallest module whose *validation* accuracy after fine-tuning
        reaches that seed's standard model minus `tolerance` (None when no threshold does)."""
        return {
            name: [
                matched_point(points, self.standard_val_acc[s] - tolerance, size)
                for s, points in enumerate(runs)
            ]
            for name, runs in self.points.items()
        }

    def sizes(self, tolerance: float, size: str = "weight_retention") -> dict[str, list[float]]:
        """Per training, the matched module's `size` per seed (nan where no module reaches the target)."""
        return {
            name: [math.nan if point is None else point[size] for point in points]
            for name, points in self.matched(tolerance, size).items()
        }

    def verdict(self, a: str, b: str, tolerance: float, size: str = "weight_retention") -> str:
        """Training `a`'s matched module size relative to `b`'s, paired over seeds (`paired_verdict`)."""
        sizes = self.sizes(tolerance, size)
        return paired_verdict(sizes[a], sizes[b])

    def summary(self, tolerance: float) -> dict[str, dict[str, float]]:
        """Per training, mean and sd over seeds of the matched module's sizes (per-block weight
        retention, NeMo's paper retention, MwT's pooled KRR) and test accuracy after fine-tuning,
        with the number of seeds whose sweep reached the target."""
        rows = {}
        for name, points in self.matched(tolerance).items():
            reached = [point for point in points if point is not None]
            row: dict[str, float] = {"seeds reaching": len(reached)}
            for key in ("weight_retention", "paper_weight_retention", "pooled_unit_retention", "test_acc"):
                values = [point[key] for point in reached if key in point]
                row[f"{key} mean"] = float(np.mean(values)) if values else math.nan
                row[f"{key} sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
            rows[name] = row
        return rows


def frontier_sweep(
    make_model: Callable[[], BlockModel],
    data,
    classes: Sequence[int],
    configs: dict[str, ModularConfig],
    seeds: Sequence[int],
    train: TrainConfig,
    thresholds: Sequence[float],
    finetune: FinetuneConfig | None = None,
) -> Frontiers:
    """For each seed: a standard model (`make_model()` trained with cross-entropy, no masks), then each
    training of `configs` (on a fresh `make_model()`), swept over `thresholds` with the papers' fine-tune."""
    finetune = finetune or FinetuneConfig()
    points: dict[str, list[list[dict[str, float]]]] = {name: [] for name in configs}
    standard_val, standard_test = [], []
    for seed in seeds:
        run = dataclasses.replace(train, seed=seed, progress=False)
        seed_everything(seed)
        standard = make_model()
        fit(standard, data, run)
        standard_val.append(subtask_accuracy(standard, data.val, classes, restrict=True))
        standard_test.append(subtask_accuracy(standard, data.test, classes, restrict=True))
        for name, config in configs.items():
            seed_everything(seed)
            model, _ = train_nemo(make_model(), data, config, run)
            tune = dataclasses.replace(finetune, seed=seed)
            points[name].append(threshold_sweep(model, data, classes, thresholds, tune, standard))
    return Frontiers(points, list(seeds), standard_val, standard_test)


@dataclass
class ModularAnalysis:
    """A trained masked model with its binary training masks and class masks, ready to cut modules."""

    model: BlockModel
    train_masks: dict[str, torch.Tensor]
    train_y: torch.Tensor
    class_masks: dict[str, torch.Tensor]

    @classmethod
    def of(cls, model: BlockModel, train: Split, threshold: float = 0.9) -> ModularAnalysis:
        masks = collect_masks(model, train.x)
        return cls(
            model, masks, train.y.cpu(), class_unit_masks(masks, train.y, _num_classes(model), threshold)
        )

    def module(self, classes: Sequence[int]) -> BlockModel:
        return extract_module(self.model, self.class_masks, classes)

    def report(
        self,
        classes: Sequence[int],
        test: Split,
        finetune_on: Split | None = None,
        finetune: TrainConfig | None = None,
    ) -> dict[str, float]:
        """One table row: module and full-model accuracy on `classes`, sizes, times, cohesion, coupling."""
        module = self.module(classes)
        row = {
            "module_acc": subtask_accuracy(module, test, classes),
            "full_acc": subtask_accuracy(self.model, test, classes, restrict=True),
        }
        if finetune_on is not None:
            finetune_module(module, finetune_on, classes, finetune)
            row["finetuned_acc"] = evaluate(module, subtask_split(test, classes))["acc"]
        x = test.x[:256]
        row.update(
            {
                "weight_retention": weight_retention(self.model, module),
                "unit_retention": unit_retention(module_units(self.class_masks, classes)),
                "cohesion": cohesion(self.train_masks, self.train_y, self.class_masks),
                "coupling": coupling(self.class_masks),
                "module_params": count_parameters(module),
                "full_params": count_parameters(self.model),
                "module_ms": 1000 * inference_time(module, x),
                "full_ms": 1000 * inference_time(self.model, x),
            }
        )
        return row


# --------------------------------------------------------------------------- pictures


def class_order(masks: torch.Tensor) -> torch.Tensor:
    """Units of a bool `(classes, units)` mask ordered by the first class they belong to (units of no
    class last), so each class's units form a block: `(units,)` indices."""
    classes, units = masks.shape
    first = torch.where(masks.any(dim=0), masks.float().argmax(dim=0), torch.full((units,), classes))
    return torch.sort(first, stable=True).indices


def plot_class_masks(class_masks: dict[str, dict[str, torch.Tensor]], layers: Sequence[str] | None = None):
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
):
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
):
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
