"""Notebook 02's exercises: one DGL step, the kernel alignment, the Forward-Forward layer loss."""

from __future__ import annotations

import torch

from ..local import LocalNet, decoupled_gradients, ff_layer_loss, kernel_alignment
from ..models import MLP
from .core import Exercise, register


def _local_nets():
    gen = torch.Generator().manual_seed(2)

    def case(num_modules: int, aux_head: str, n: int = 12):
        torch.manual_seed(num_modules)
        net = LocalNet(MLP((1, 8, 8), hidden=(16, 16, 16, 16)), (1, 8, 8), 10, num_modules, aux_head, 8)
        return net, torch.randn(n, 1, 8, 8, generator=gen), torch.randint(0, 10, (n,), generator=gen)

    yield "an MLP of 4 blocks cut into K = 4 modules, linear heads", case(4, "linear"), {}
    yield "K = 2 modules of 2 blocks each", case(2, "linear"), {}
    yield "K = 3 modules with 'mlp' auxiliary heads", case(3, "mlp"), {}
    yield "K = 1 (one module: plain end-to-end backprop)", case(1, "linear"), {}
    yield "a batch of one sample", case(4, "linear", n=1), {}


def _features():
    gen = torch.Generator().manual_seed(3)
    labels = torch.randint(0, 3, (20,), generator=gen)
    yield "20 random features of width 8, 3 classes", (torch.randn(20, 8, generator=gen), labels), {}
    perfect = torch.eye(4)[torch.tensor([0, 1, 2, 0, 1, 2])] * torch.arange(1.0, 7.0)[:, None]
    yield (
        "an ideal kernel: one direction per class, rows of different lengths",
        (perfect, perfect.argmax(1)),
        {},
    )
    yield (
        "every sample of the same class",
        (torch.randn(6, 5, generator=gen), torch.zeros(6, dtype=torch.long)),
        {},
    )
    yield "two samples of different classes", (torch.randn(2, 3, generator=gen), torch.tensor([0, 1])), {}


def _activities():
    gen = torch.Generator().manual_seed(4)
    yield (
        "a batch of 16, 10 units, theta 2",
        (torch.randn(16, 10, generator=gen), torch.randn(16, 10, generator=gen), 2.0),
        {},
    )
    yield "theta 0", (torch.randn(8, 5, generator=gen), torch.randn(8, 5, generator=gen), 0.0), {}
    yield (
        "a batch of one sample",
        (torch.randn(1, 7, generator=gen), torch.randn(1, 7, generator=gen), 2.0),
        {},
    )
    big = 30 * torch.randn(4, 6, generator=gen)
    yield "large activities (goodness near 1000: softplus must not overflow)", (big, big.flip(0), 2.0), {}


register(
    Exercise(
        name="dgl_step",
        notebook="02_local_training",
        title="One decoupled step (DGL)",
        difficulty=2,
        minutes=20,
        reference=decoupled_gradients,
        cases=_local_nets,
    )
)
register(
    Exercise(
        name="kernel_alignment",
        notebook="02_local_training",
        title="Kernel alignment",
        difficulty=2,
        minutes=15,
        reference=kernel_alignment,
        cases=_features,
    )
)
register(
    Exercise(
        name="ff_layer_loss",
        notebook="02_local_training",
        title="The Forward-Forward layer loss",
        difficulty=1,
        minutes=10,
        reference=ff_layer_loss,
        cases=_activities,
    )
)
