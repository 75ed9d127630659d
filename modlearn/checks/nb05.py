"""Notebook 05's exercises: MwT's cohesion and coupling losses, NeMo's contrastive loss (as the
released code computes it), and which units belong to a class."""

from __future__ import annotations

import torch

from ..nemo import class_unit_masks, cohesion_coupling_losses, released_contrastive_loss
from .core import Exercise, register


def layer_class_units(
    masks: torch.Tensor, y: torch.Tensor, num_classes: int, threshold: float
) -> torch.Tensor:
    """`nemo.class_unit_masks` for one layer: `masks: (n, units)` bool (unit on for sample i),
    `y: (n,)` -> bool `(num_classes, units)`: unit u belongs to class c when it is on for at least
    `threshold` of the class-c samples."""
    return class_unit_masks({"layer": masks}, y, num_classes, threshold)["layer"]


def _mask_batches(with_tau: bool):
    gen = torch.Generator().manual_seed(5)

    def batch(n: int, units: int, classes: int, sparse: bool = True):
        masks = torch.rand(n, units, generator=gen)
        if sparse:
            masks = torch.relu(masks - 0.5)  # masks are exactly 0 for about half the units
        return masks, torch.randint(0, classes, (n,), generator=gen)

    tau = ({"tau": 0.2},) if with_tau else ({},)
    yield "a batch of 16 samples, 3 classes, 12 units", batch(16, 12, 3), *tau
    yield "two samples of different classes", (torch.rand(2, 5, generator=gen), torch.tensor([0, 1])), *tau
    labels = torch.tensor([0, 0, 1, 2, 2, 2, 3])
    yield "a class with a single sample", (torch.rand(7, 6, generator=gen), labels), *tau
    yield "dense masks, 10 classes, 32 samples", batch(32, 20, 10, sparse=False), *tau
    if with_tau:
        yield "a batch of 16, 3 classes, tau = 1", batch(16, 12, 3), {"tau": 1.0}


def _unit_cases():
    gen = torch.Generator().manual_seed(7)
    masks = torch.rand(60, 10, generator=gen) < torch.linspace(0.05, 0.99, 10)
    y = torch.arange(60) % 3
    yield "60 samples, 3 classes, threshold 0.9", (masks, y, 3, 0.9), {}
    yield "the same, threshold 0.5", (masks, y, 3, 0.5), {}
    exact = torch.zeros(10, 4, dtype=torch.bool)
    exact[:9, 0] = True  # unit 0 on for exactly 9 of 10 samples: it belongs at threshold 0.9
    exact[:, 1] = True
    exact[:5, 2] = True
    yield "a unit on for exactly 90 % of its class", (exact, torch.zeros(10, dtype=torch.long), 1, 0.9), {}
    two = torch.cat([exact, ~exact])
    yield "two classes using opposite units", (two, torch.tensor([0] * 10 + [1] * 10), 2, 0.9), {}


register(
    Exercise(
        name="mwt_losses",
        notebook="05_nemo",
        title="MwT's cohesion and coupling losses",
        difficulty=2,
        minutes=15,
        reference=cohesion_coupling_losses,
        cases=lambda: _mask_batches(with_tau=False),
    )
)
register(
    Exercise(
        name="nemo_loss",
        notebook="05_nemo",
        title="NeMo's contrastive loss, as released",
        difficulty=3,
        minutes=20,
        reference=released_contrastive_loss,
        cases=lambda: _mask_batches(with_tau=True),
    )
)
register(
    Exercise(
        name="class_units",
        notebook="05_nemo",
        title="Which units belong to a class",
        difficulty=1,
        minutes=10,
        reference=layer_class_units,
        cases=_unit_cases,
    )
)
