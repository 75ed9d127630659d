"""Notebook 06's exercises: BIMT's connection cost, its closed-form swap gains and its lambda schedule."""

from __future__ import annotations

import torch

from .. import bimt
from .core import Exercise, register


def connection_cost(model: bimt.BioMLP, weight_factor: float = 1.0) -> torch.Tensor:
    """BIMT's connection cost with every layer and bias penalized, summed (`bimt.connection_cost`):
    `CC = sum_l [sum_ij |W_ij| (A d_ij + l0) + sum_i |b_i| l0]`, a scalar tensor."""
    return bimt.connection_cost(model, weight_factor)


def brute_force_swap_gains(model: bimt.BioMLP, layer: int, weight_factor: float = 1.0) -> torch.Tensor:
    """`G[i, j]`: the change of `connection_cost` when neurons `i` and `j` of `layer` swap, each
    swap made and the whole cost re-evaluated (`bimt.brute_force_gains`, row by row): `(n, n)`."""
    return torch.stack(
        [bimt.brute_force_gains(model, layer, i, weight_factor) for i in range(model.num_sites(layer))]
    )


def closed_form_swap_gains(model: bimt.BioMLP, layer: int, weight_factor: float = 1.0) -> torch.Tensor:
    """The same `G` in closed form, `G = M + M^T - diag(M) 1^T - 1 diag(M)^T` (`bimt.swap_gains`)."""
    return bimt.swap_gains(model, layer, weight_factor)


def _networks():
    with torch.random.fork_rng():  # the notebook's random stream stays as it was
        torch.manual_seed(6)
        one_d = bimt.BioMLP([4, 10, 10, 2], spacing=0.1).double()
        two_d = bimt.BioMLP([9, 16, 4, 3], geometry="2d", spacing=0.5).double()
    return one_d, two_d


def _cost_cases():
    one_d, two_d = _networks()
    yield "fresh [4, 10, 10, 2] network, 1-D, A = 1", (one_d,), {}
    yield "the same network, A = 0 (plain L1 times l0)", (one_d,), {"weight_factor": 0.0}
    yield "2-D sheets [9, 16, 4, 3], A = 2, l0 = 0.5", (two_d,), {"weight_factor": 2.0}


def _gain_cases():
    one_d, two_d = _networks()
    yield "hidden layer 1 of a 1-D network, A = 1", (one_d, 1), {}
    yield "the input layer (no incoming wires)", (one_d, 0), {}
    yield "the output layer (no outgoing wires)", (one_d, 3), {}
    yield "hidden layer 1 of a 2-D network, A = 2", (two_d, 1), {"weight_factor": 2.0}


def _schedule_cases():
    paper = ((1.0, 10.0, 1.0), (0.25, 0.75))
    for step in (0, 249, 250, 500, 749, 750, 999):
        yield f"paper schedule, step {step} of 1000", (step, 1000, 1e-3, *paper), {}
    images = ((1.0, 10.0, 100.0), (0.25, 0.5))
    for step in (0, 100, 200, 399):
        yield f"three rising stretches (1, 10, 100), step {step} of 400", (step, 400, 0.01, *images), {}
    yield "two stretches, boundary at one half, step 50 of 100", (50, 100, 1e-3, (1.0, 10.0), (0.5,)), {}
    yield "a single stretch (no boundary)", (7, 10, 0.1, (2.0,), ()), {}


register(
    Exercise(
        name="connection_cost",
        notebook="06_bimt",
        title="The connection cost",
        difficulty=1,
        minutes=10,
        reference=connection_cost,
        cases=_cost_cases,
        atol=1e-9,
        rtol=1e-9,
    )
)

register(
    Exercise(
        name="swap_gains",
        notebook="06_bimt",
        title="All swap gains of a layer in closed form",
        difficulty=3,
        minutes=25,
        reference=brute_force_swap_gains,
        solution=closed_form_swap_gains,
        cases=_gain_cases,
        atol=1e-9,
        rtol=1e-7,
    )
)

register(
    Exercise(
        name="lambda_at",
        notebook="06_bimt",
        title="The lambda schedule",
        difficulty=1,
        minutes=10,
        reference=bimt.lambda_at,
        cases=_schedule_cases,
        atol=1e-12,
        rtol=1e-9,
    )
)
