"""Models whose layers are an ordered `blocks` list plus a `head`, so they can be cut into modules.

`model(x) == model.head(blocks[-1](...blocks[0](x)))`. Local training (notebook 02), Deep
Incubation (03) and NeMo (05) cut models along `blocks`; circuit discovery (07) reads the linear
layers of an `MLP` or of a `SpatialMLP` (the contract `bimt.BioMLP` fulfils, which drawing uses too).
Introduced in `tutorials/01_e2e_backprop.ipynb`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import torch
import torch.nn as nn
import torch.nn.functional as F

from .validate import check_choice, check_int, check_shape


class BlockModel(nn.Module):
    """Base class: `blocks` (an `nn.ModuleList`) applied in order, then `head`."""

    blocks: nn.ModuleList
    head: nn.Module

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x)

    def features(self, x: torch.Tensor, upto: int) -> torch.Tensor:
        """The representation after the first `upto` blocks (`upto=0` returns `x`)."""
        if not 0 <= upto <= len(self.blocks):
            raise ValueError(f"upto={upto} must lie in [0, {len(self.blocks)}] (the number of blocks)")
        for block in self.blocks[:upto]:
            x = block(x)
        return x

    @classmethod
    def from_sequential(cls, model: nn.Sequential) -> BlockSequence:
        """A plain `nn.Sequential` of layers as a `BlockModel` that shares its parameters.

        Each block starts at a weight layer (`Linear`, `Conv1d/2d`, or a sub-module holding one) and
        keeps the layers after it up to the next weight layer (activations, norms, pooling, dropout,
        `Flatten`); layers before the first weight layer join the first block. The last weight layer
        and what follows it is the head. `Sequential(Flatten, Linear, ReLU, Linear, ReLU, Linear)`
        becomes blocks `[Flatten-Linear-ReLU, Linear-ReLU]` and head `Linear`.
        Raises `ValueError` when the Sequential has fewer than two weight layers.
        """
        layers = list(model)
        starts = [i for i, layer in enumerate(layers) if _holds_weights(layer)]
        if len(starts) < 2:
            raise ValueError(
                f"found {len(starts)} weight layer(s) (Linear/Conv) in the Sequential; it needs at least "
                "two: one block or more, and a head (the last weight layer)"
            )
        edges = [0, *starts[1:]]
        blocks = [nn.Sequential(*layers[a:b]) for a, b in zip(edges[:-1], edges[1:], strict=True)]
        tail = layers[starts[-1] :]
        return BlockSequence(blocks, tail[0] if len(tail) == 1 else nn.Sequential(*tail))


WEIGHT_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d)


def _holds_weights(layer: nn.Module) -> bool:
    return any(isinstance(m, WEIGHT_LAYERS) for m in layer.modules())


class BlockSequence(BlockModel):
    """A `BlockModel` from given blocks and head (what `BlockModel.from_sequential` builds).

    `x: (batch, *input)` -> `head(blocks[-1](... blocks[0](x)))`.
    """

    def __init__(self, blocks: Sequence[nn.Module], head: nn.Module) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.head = head


class MLP(BlockModel):
    """Fully connected network. `x: (batch, *input_shape)` -> logits `(batch, num_classes)`.

    Block k is `Linear -> activation` (block 0 flattens its input first); the head is a `Linear`.
    """

    def __init__(
        self,
        input_shape: int | Sequence[int],
        hidden: Sequence[int] = (256, 256, 256),
        num_classes: int = 10,
        activation: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__()
        in_features = input_shape if isinstance(input_shape, int) else math.prod(input_shape)
        if not hidden or any(int(h) < 1 for h in hidden):
            raise ValueError(f"hidden={tuple(hidden)} must be a non-empty list of positive widths")
        widths = [in_features, *hidden]
        self.blocks = nn.ModuleList()
        for k, (fan_in, fan_out) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers: list[nn.Module] = [nn.Flatten()] if k == 0 else []
            self.blocks.append(nn.Sequential(*layers, nn.Linear(fan_in, fan_out), activation()))
        self.head = nn.Linear(widths[-1], num_classes)
        self.widths = widths + [num_classes]


class CNN(BlockModel):
    """Small convolutional network. `x: (batch, C, H, W)` -> `(batch, num_classes)`.

    Block k is `Conv3x3 -> BatchNorm -> ReLU -> MaxPool2` (pooling only while the map is >= 2
    pixels); the head is global average pooling and a `Linear`. Works for 8x8 digits and 32x32 CIFAR.
    """

    def __init__(
        self,
        in_channels: int = 1,
        channels: Sequence[int] = (32, 64, 128),
        num_classes: int = 10,
        image_size: int = 28,
    ) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must list at least one conv width, e.g. (32, 64)")
        self.blocks = nn.ModuleList()
        size, prev = image_size, in_channels
        for ch in channels:
            layers: list[nn.Module] = [nn.Conv2d(prev, ch, 3, padding=1), nn.BatchNorm2d(ch), nn.ReLU()]
            if size >= 2:
                layers.append(nn.MaxPool2d(2))
                size //= 2
            self.blocks.append(nn.Sequential(*layers))
            prev = ch
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(prev, num_classes))


class PatchEmbed(nn.Module):
    """Image -> tokens: non-overlapping patches through a `Linear`, a class token, positions.

    `x: (batch, C, H, W)` -> `(batch, 1 + (H/p)*(W/p), dim)`.
    """

    def __init__(self, image_size: int, patch_size: int, in_channels: int, dim: int) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image_size={image_size} is not a multiple of patch_size={patch_size}")
        self.patch_size = patch_size
        self.proj = nn.Linear(in_channels * patch_size**2, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, 1 + (image_size // patch_size) ** 2, dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.patch_size
        patches = F.unfold(x, kernel_size=p, stride=p).transpose(1, 2)  # (B, T, C*p*p)
        tokens = self.proj(patches)
        return torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1) + self.pos


class Attention(nn.Module):
    """Multi-head self-attention with separate `q`, `k`, `v`, `proj` Linears (maskable, prunable)."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim={dim} must be divisible by heads={heads}")
        self.heads = heads
        self.q, self.k, self.v = (nn.Linear(dim, dim) for _ in range(3))
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = (lin(x).view(b, t, self.heads, -1).transpose(1, 2) for lin in (self.q, self.k, self.v))
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(b, t, -1))


class FeedForward(nn.Module):
    """`fc1 -> GELU -> fc2`: the transformer MLP."""

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x)))


class TransformerBlock(nn.Module):
    """Pre-norm residual block: `x + attn(LN(x))`, then `x + mlp(LN(x))`. Shape-preserving."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 2.0) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.mlp = FeedForward(dim, int(dim * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ClassTokenHead(nn.Module):
    """`LayerNorm` then a `Linear` on the class token: `(batch, T, dim)` -> `(batch, classes)`."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm, self.fc = nn.LayerNorm(dim), nn.Linear(dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.norm(x[:, 0]))


class TinyViT(BlockModel):
    """A tiny Vision Transformer: block 0 embeds patches, blocks 1..depth are transformer blocks.

    `x: (batch, C, H, W)` -> `(batch, num_classes)`. The patch size defaults to `image_size // 4`
    (16 patches), so 8x8 digits and 28x28 MNIST cost the same.
    """

    def __init__(
        self,
        image_size: int = 28,
        in_channels: int = 1,
        num_classes: int = 10,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        mlp_ratio: float = 2.0,
        patch_size: int | None = None,
    ) -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"depth={depth} must be >= 1")
        patch = patch_size or max(1, image_size // 4)
        self.blocks = nn.ModuleList([PatchEmbed(image_size, patch, in_channels, dim)])
        self.blocks.extend(TransformerBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.head = ClassTokenHead(dim, num_classes)


@runtime_checkable
class SpatialMLP(Protocol):
    """What circuit discovery and network drawing read from an MLP whose neurons sit in space.

    `linears[l]` maps neuron layer `l` (width `widths[l]`) to `l + 1`, `activation` follows every
    linear but the last; `embedding` (or None) turns token ids into the first layer's features.
    Neurons may move: position k of the first layer reads input `in_perm[k]`, position k of the
    last computes output `out_perm[k]`. `coords(l)` places the neurons of layer `l` for drawing:
    `(widths[l], 2)`. `bimt.BioMLP` conforms.
    """

    linears: nn.ModuleList
    activation: nn.Module
    embedding: nn.Module | None
    widths: list[int]
    in_perm: torch.Tensor
    out_perm: torch.Tensor

    def coords(self, layer: int) -> torch.Tensor: ...


def squared_edges(weight: torch.Tensor, name: str = "W") -> torch.Tensor:
    """Squared edge strengths `(out, in)`: `W**2` for a matrix, per-channel-pair squared kernel
    norms for a conv weight `(out, in, kh, kw)`. Differentiable."""
    if weight.ndim == 2:
        return weight.float() ** 2
    if weight.ndim == 4:
        return (weight.float() ** 2).sum(dim=(2, 3))
    raise ValueError(
        f"{name} has shape {tuple(weight.shape)}: expected a matrix (out, in) "
        "or a conv weight (out, in, kh, kw)"
    )


MODELS = {"mlp": MLP, "cnn": CNN, "vit": TinyViT}


def make_model(
    kind: str, input_shape: int | Sequence[int], num_classes: int = 10, **kwargs: object
) -> BlockModel:
    """Build `"mlp"`, `"cnn"` or `"vit"` for inputs of `input_shape = (C, H, W)` (an MLP also takes a
    number of input features, `make_model("mlp", 64)`).

    `kwargs` go to the class (`hidden=` for MLP, `channels=` for CNN, `dim=`, `depth=` ... for ViT).
    """
    check_choice("kind", kind, sorted(MODELS), owner="make_model")
    if kind == "mlp" and isinstance(input_shape, int) and not isinstance(input_shape, bool):
        input_shape = (1, 1, check_int("input_shape", input_shape, 1, owner="make_model"))
    input_shape = check_shape("input_shape", input_shape, 3, owner="make_model")
    num_classes = check_int("num_classes", num_classes, 1, owner="make_model")
    allowed = set(inspect.signature(MODELS[kind]).parameters) - {
        "input_shape",
        "in_channels",
        "image_size",
        "num_classes",
    }
    for name in kwargs:
        if name not in allowed:
            raise ValueError(
                f"make_model({name}=...): {name} is not a setting of {kind!r} models; "
                f"choose among {sorted(allowed)}"
            )
    c, h, _ = input_shape
    if kind == "mlp":
        return MLP(input_shape, num_classes=num_classes, **kwargs)
    if kind == "cnn":
        return CNN(in_channels=c, num_classes=num_classes, image_size=h, **kwargs)
    return TinyViT(image_size=h, in_channels=c, num_classes=num_classes, **kwargs)


def split_blocks(num_blocks: int, num_modules: int | None) -> list[tuple[int, int]]:
    """Contiguous `(start, stop)` block ranges of `num_modules` modules, as even as possible.

    `split_blocks(4, 2) == [(0, 2), (2, 4)]`; `None` gives one module per block. The one rule every
    method that cuts a model into modules or stages uses (local training, Deep Incubation, the scoreboard).
    """
    k = num_blocks if num_modules is None else num_modules
    if not 1 <= k <= num_blocks:
        raise ValueError(
            f"K={k} modules cannot be cut from a model with {num_blocks} blocks: choose K between 1 "
            f"and {num_blocks}, or build a deeper model (more hidden widths / channels)"
        )
    edges = [round(i * num_blocks / k) for i in range(k + 1)]
    return list(zip(edges[:-1], edges[1:], strict=True))


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of scalar parameters (optionally only those with `requires_grad`)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


# --------------------------------------------------------------------------- residual MLP (notebook 03)


class ResidualBlock(nn.Module):
    """Pre-norm residual MLP block: `x + fc2(GELU(fc1(LN(x))))`. `(batch, width)` -> same shape."""

    def __init__(self, width: int, expansion: float = 2.0) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.mlp = FeedForward(width, int(width * expansion))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.mlp(self.norm(x))


class ResidualMLP(BlockModel):
    """A deep MLP that stays trainable: `x: (batch, *input_shape)` -> `(batch, num_classes)`.

    Block 0 embeds the flattened input (`Flatten -> Linear` to `width`), blocks 1..depth are
    `ResidualBlock`s of that width, the head is `LayerNorm -> Linear`. Like `TinyViT`, it cuts into
    stages along `blocks` (Deep Incubation, `tutorials/03_deep_incubation.ipynb`).
    """

    def __init__(
        self,
        input_shape: int | Sequence[int],
        width: int = 128,
        depth: int = 4,
        num_classes: int = 10,
        expansion: float = 2.0,
    ) -> None:
        super().__init__()
        in_features = input_shape if isinstance(input_shape, int) else math.prod(input_shape)
        if width < 1 or depth < 1:
            raise ValueError(f"width={width} and depth={depth} must both be >= 1")
        self.blocks = nn.ModuleList([nn.Sequential(nn.Flatten(), nn.Linear(in_features, width))])
        self.blocks.extend(ResidualBlock(width, expansion) for _ in range(depth))
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, num_classes))


# --------------------------------------------------------------------------- token transformer (notebook 04)


class TokenEmbed(nn.Module):
    """Token ids -> vectors: learned embeddings, a readout token in front, learned positions.

    `x: (batch, T)` integer ids in `[0, vocab)` -> `(batch, 1 + T, dim)`.
    """

    def __init__(self, vocab: int, seq_len: int, dim: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, 1 + seq_len, dim) * 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.is_floating_point() or x.ndim != 2:
            raise ValueError(
                f"TokenEmbed takes integer token ids of shape (batch, T); got {x.dtype} {tuple(x.shape)}"
            )
        tokens = self.embed(x)
        return torch.cat([self.cls.expand(x.shape[0], -1, -1), tokens], dim=1) + self.pos


class ModularTransformer(BlockModel):
    """A small transformer for `(a + b) mod p` (the modular-addition model of Golechha et al. 2025,
    after Nanda et al. 2023): learned token embeddings, `depth` pre-norm blocks, readout token.

    `x: (batch, 2)` int64 pairs -> logits `(batch, p)`. Block 0 embeds; blocks 1..depth attend.
    """

    def __init__(
        self, p: int = 59, dim: int = 128, depth: int = 1, heads: int = 4, mlp_ratio: float = 4.0
    ) -> None:
        super().__init__()
        if p < 2 or depth < 1:
            raise ValueError(f"p={p} must be >= 2 and depth={depth} >= 1")
        self.blocks = nn.ModuleList([TokenEmbed(p, 2, dim)])
        self.blocks.extend(TransformerBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.head = ClassTokenHead(dim, p)
