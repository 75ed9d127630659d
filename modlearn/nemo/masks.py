"""Masked layers: per-sample unit (neuron / channel) masks computed by small generators, a
masked copy of a network (`masked_model`), and the layer slicing their pruning uses.

Part of `modlearn.nemo` (its package docstring names the papers).
"""

from __future__ import annotations

import copy
import warnings

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import skip_init

from ..api import block_model, contract_error
from ..models import BlockModel, TinyViT
from ..validate import check_choice

Keep = dict[str, torch.Tensor]  # masked-layer name -> bool (units,) kept units
VIT_MASKS = ("all", "qkv_fc1")


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


def masked_model(model: nn.Module, mask_first_layer: bool = False, vit_masks: str = "all") -> BlockModel:
    """A masked copy of a `BlockModel` (or a plain `nn.Sequential`, converted by `api.block_model`),
    weights copied.

    A block that is an `nn.Sequential` (MLP, CNN, a converted Sequential): every Linear/Conv2d in it
    (a conv's BatchNorm moves inside the mask) (its BatchNorm moves inside the mask); TinyViT: every
    Linear of each transformer block (`vit_masks="all"`, as NeMo) or only q, k, v and the MLP's fc1
    (`"qkv_fc1"`: the outputs writing into the residual stream, `proj` and `fc2`, stay unmasked).
    With `mask_first_layer=False` (both reference codes) the first Linear/conv, or the first
    transformer block, stays unmasked. The head and the patch embedding are never masked.
    """
    model = block_model(model, "masked_model")
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
            if not isinstance(block, nn.Sequential):
                raise contract_error(
                    "masked_model",
                    model,
                    "blocks that are nn.Sequential of Linear/Conv2d layers and activations (or a TinyViT)",
                    "pass an nn.Sequential of Linear/Conv2d layers and activations (converted with "
                    "BlockModel.from_sequential) or a model of modlearn.models",
                )
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


# --- slicing layers (what a pruned masked layer and a pruned module are made of)


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
