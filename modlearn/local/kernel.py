"""The kernel proxy method (Duan & Principe; kerNET): two modules, the hidden one trained to align its
kernel with the ideal label kernel, then frozen, then the output layer trained with cross-entropy."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..api import block_model
from ..models import BlockModel, BlockSequence
from ..train import Batch, Metrics, Objective
from .net import stage_output_shapes


class UnitVectors(nn.Module):
    """`(n, d)` or `(n, C, H, W)` -> unit-norm `(n, d)` rows (maps average-pooled).

    kerNET's normalised features."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.normalize(as_vectors(h), dim=1)


def kernel_modules(
    model: nn.Module, input_shape: Sequence[int], num_classes: int
) -> tuple[nn.Sequential, nn.Linear]:
    """The kernel method's two modules: all blocks + `UnitVectors` (hidden, `(n, ...) -> (n, d)`), and a
    new output `Linear` `(n, d) -> (n, num_classes)`. `model`: a `BlockModel` or a plain `nn.Sequential`."""
    model = block_model(model, "kernel_modules")
    hidden = nn.Sequential(*model.blocks, UnitVectors())
    width = stage_output_shapes([hidden], input_shape)[0][0]
    return hidden, nn.Linear(width, num_classes).to(next(model.parameters()).device)


def kernel_classifier(hidden: nn.Sequential, output: nn.Linear) -> BlockModel:
    """The two trained modules as one `BlockModel`: the hidden module's blocks, then a head of its
    `UnitVectors` and the output layer. `(n, ...) -> (n, classes)`."""
    *blocks, unit = hidden
    return BlockSequence(blocks, nn.Sequential(unit, output))


def kernel_alignment(features: torch.Tensor, labels: torch.Tensor, kernel_min: float = 0.0) -> torch.Tensor:
    """Alignment of the batch's cosine kernel with the ideal label kernel, off the diagonal.

    `features: (n, d)` (images `(n, C, H, W)` are average-pooled to `(n, C)`), `labels: (n,)`.
    `K_ij = <z_i, z_j>` for unit vectors `z_i`; `K*_ij = 1` if `y_i == y_j` else `kernel_min`;
    `A = sum_{i<j} K_ij K*_ij / sqrt(sum_{i<j} K_ij^2 * sum_{i<j} K*_ij^2)` in [-1, 1], and `A = 1`
    exactly when `K` is a positive multiple of `K*` (Cauchy-Schwarz). Duan & Principe's kerNET proxy.
    """
    z = F.normalize(as_vectors(features).float(), dim=1)
    if z.shape[0] != labels.shape[0] or z.shape[0] < 2:
        raise ValueError(
            f"{z.shape[0]} feature rows and {labels.shape[0]} labels: need the same number, >= 2"
        )
    upper = torch.ones(len(z), len(z), dtype=torch.bool, device=z.device).triu(diagonal=1)
    kernel = (z @ z.T)[upper]
    ideal = torch.where(labels[:, None] == labels[None, :], 1.0, float(kernel_min)).to(kernel)[upper]
    return (kernel * ideal).sum() / (kernel.norm() * ideal.norm()).clamp_min(1e-12)


def as_vectors(h: torch.Tensor) -> torch.Tensor:
    """Features as `(n, d)`: MLP features pass through, CNN maps `(n, C, H, W)` are average-pooled."""
    if h.ndim == 2:
        return h
    if h.ndim == 4:
        return h.mean(dim=(2, 3))
    raise ValueError(f"features of shape {tuple(h.shape)} are neither (n, d) nor (n, C, H, W)")


class KernelAlignmentObjective(Objective):
    """Proxy loss of the kernel method: `1 - kernel_alignment(model(x), y)` for the hidden module."""

    def __init__(self, kernel_min: float = 0.0) -> None:
        self.kernel_min = kernel_min

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        """`batch = (x: (n, ...), y: (n,))`; the loss and the batch's `alignment`."""
        x, y = batch
        alignment = kernel_alignment(model(x), y, self.kernel_min)
        return 1.0 - alignment, {"alignment": alignment.detach()}
