"""Where BIMT's neurons sit: 1-D rows, 2-D grids, circles, and the wire lengths between them."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

GEOMETRIES = ("1d", "2d")


def grid_positions(n: int) -> torch.Tensor:
    """`n` sites on a square grid filling [0, 1]^2, row by row: `(n, 2)`. `n` must be a square."""
    side = math.isqrt(n)
    if side * side != n:
        raise ValueError(
            f"{n} neurons cannot form a square grid: use a perfect square width "
            "(e.g. 784 = 28x28, 100 = 10x10) or the '1d' geometry"
        )
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    return torch.stack([(cols.flatten() + 0.5) / side, (rows.flatten() + 0.5) / side], dim=1)


def circle_positions(n: int, radius: float = 0.25) -> torch.Tensor:
    """`n` sites on a circle of `radius` around (1/2, 1/2): `(n, 2)` (2-D output layers)."""
    angle = 2 * math.pi * torch.arange(n) / n
    return torch.stack([0.5 + radius * torch.cos(angle), 0.5 + radius * torch.sin(angle)], dim=1)


def row_positions(n: int) -> torch.Tensor:
    """`n` sites at `x = (i + 1/2) / n` on [0, 1]: `(n, 1)`."""
    return ((torch.arange(n) + 0.5) / n).unsqueeze(1)


def layer_sites(
    widths: Sequence[int], geometry: str, in_fold: int = 1, out_fold: int = 1
) -> list[torch.Tensor]:
    """Site positions of every neuron layer: `1d` rows, or `2d` grids with outputs on a circle.

    A folded layer (`in_fold`, `out_fold`) has `width / fold` sites, each shared by `fold` neurons.
    """
    if geometry not in GEOMETRIES:
        raise ValueError(
            f"unknown geometry {geometry!r}: choose one of {GEOMETRIES} or pass a list "
            "of (sites, dims) position tensors, one per layer"
        )
    sites = [w // f for w, f in zip(widths, layer_folds(widths, in_fold, out_fold), strict=True)]
    if geometry == "1d":
        return [row_positions(n) for n in sites]
    return [grid_positions(n) for n in sites[:-1]] + [circle_positions(sites[-1])]


def layer_folds(widths: Sequence[int], in_fold: int, out_fold: int) -> list[int]:
    """How many neurons share a site in each layer: `in_fold` first, `out_fold` last, 1 between."""
    folds = [in_fold] + [1] * (len(widths) - 2) + [out_fold]
    for name, fold, width in (("in_fold", in_fold, widths[0]), ("out_fold", out_fold, widths[-1])):
        if fold < 1 or width % fold:
            raise ValueError(f"{name}={fold} must be >= 1 and divide the layer width {width}")
    return folds


def pairwise_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Manhattan distance between positions `a: (n, D)` and `b: (m, D)`: `(n, m)` (|dx| in 1-D)."""
    return (a[:, None, :] - b[None, :, :]).abs().sum(-1)
