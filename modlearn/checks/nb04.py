"""Notebook 04's exercises: clusterability C, spectral co-clustering, cross-cluster ablation."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ..cluster import Coclusters, ablate_cross_cluster, clusterability, planted_blocks, spectral_coclusters
from .core import CheckFailed, Exercise, compare_values, register


def _coclusters(rows: torch.Tensor, cols: torch.Tensor) -> Coclusters:
    return Coclusters(rows=rows, cols=cols, k=int(max(rows.max(), cols.max())) + 1)


def layer_clusterability(weight: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """`cluster.clusterability` with the exercise's signature: `weight: (out, in)`, co-cluster labels
    `rows: (out,)` and `cols: (in,)`; a scalar tensor."""
    return clusterability(weight, _coclusters(rows, cols))


def layer_coclusters(weight: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`cluster.spectral_coclusters` with the exercise's signature: `weight: (out, in)` ->
    `(rows: (out,), cols: (in,))`, aligned labels in `[0, k)`."""
    found = spectral_coclusters(weight, k)
    return found.rows, found.cols


def ablated_weight(weight: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """`cluster.ablate_cross_cluster` on one Linear layer: `weight: (out, in)` with every weight
    between an output and an input of different co-clusters set to zero."""
    layer = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
    with torch.no_grad():
        layer.weight.copy_(weight)
    return ablate_cross_cluster(layer, {"": _coclusters(rows, cols)}).weight.detach()


def _labelled_weights():
    gen = torch.Generator().manual_seed(6)
    w = torch.randn(6, 8, generator=gen)
    rows, cols = torch.tensor([0, 1, 0, 1, 0, 1]), torch.tensor([1, 1, 0, 0, 1, 0, 0, 1])
    yield "a random 6x8 layer, k = 2", (w, rows, cols), {}
    planted, truth = planted_blocks(12, 9, 3, seed=1)
    yield "planted blocks with their true clusters (C = 1)", (planted, truth.rows, truth.cols), {}
    wrong = torch.roll(truth.cols, 1)
    yield "planted blocks with shifted input clusters, k = 3", (planted, truth.rows, wrong), {}
    skew = torch.linspace(-2.0, 3.0, 20).reshape(4, 5)
    yield (
        "negative and positive weights",
        (skew, torch.tensor([0, 0, 1, 1]), torch.tensor([1, 0, 1, 0, 1])),
        {},
    )


def _hidden_blocks():
    for out, inp, k, noise in ((24, 32, 2, 0.0), (30, 20, 3, 0.0), (40, 40, 4, 0.1), (24, 32, 2, 0.2)):
        w, _ = planted_blocks(out, inp, k, noise, seed=out)
        label = f"{k} shuffled blocks in a {out}x{inp} matrix" + (
            f", off-block noise {noise}" if noise else ""
        )
        yield label, (w, k), {}


def _same_partition(got: Any, expected: tuple[torch.Tensor, torch.Tensor], case: str) -> None:
    """Labels are names: compare which neurons share a cluster (outputs and inputs together)."""
    if not (
        isinstance(got, tuple | list) and len(got) == 2 and all(isinstance(g, torch.Tensor) for g in got)
    ):
        raise CheckFailed(
            f"case '{case}': expected a pair (rows, cols) of label tensors, got {type(got).__name__}"
        )
    for side, g, e in zip(("rows", "cols"), got, expected, strict=True):
        if g.shape != e.shape:
            raise CheckFailed(f"case '{case}': {side} has shape {tuple(g.shape)}, expected {tuple(e.shape)}")
    labels_got, labels_expected = torch.cat(list(got)), torch.cat(list(expected))
    together = {
        "which neurons share a co-cluster (outputs first, then inputs)": labels_got[:, None]
        == labels_got[None, :]
    }
    compare_values(
        together, {next(iter(together)): labels_expected[:, None] == labels_expected[None, :]}, case
    )


register(
    Exercise(
        name="clusterability",
        notebook="04_clusterability",
        title="Clusterability C of a layer",
        difficulty=1,
        minutes=10,
        reference=layer_clusterability,
        cases=_labelled_weights,
    )
)
register(
    Exercise(
        name="spectral_coclusters",
        notebook="04_clusterability",
        title="Spectral co-clustering",
        difficulty=3,
        minutes=30,
        reference=layer_coclusters,
        cases=_hidden_blocks,
        compare=_same_partition,
    )
)
register(
    Exercise(
        name="ablate_cross_cluster",
        notebook="04_clusterability",
        title="Cut the cross-cluster weights",
        difficulty=1,
        minutes=5,
        reference=ablated_weight,
        cases=_labelled_weights,
    )
)
