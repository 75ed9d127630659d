"""BIMT's neuron swaps: closed-form swap gains, the swap round and its hook, and their checks."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from functools import partial

import torch

from ..train import Hook, TrainState
from .model import BioMLP, bio_mlp
from .objective import connection_cost, layer_scales


def importance(model: BioMLP, layer: int) -> torch.Tensor:
    """Score of each site of `layer`: sum of |incoming| + |outgoing| weights of its neurons: `(sites,)`."""
    weight = model.linears[0].weight
    score = torch.zeros(model.widths[layer], dtype=weight.dtype, device=weight.device)
    if layer > 0:
        score += model.linears[layer - 1].weight.detach().abs().sum(1)
    if layer < len(model.linears):
        score += model.linears[layer].weight.detach().abs().sum(0)
    return score.view(model.folds[layer], -1).sum(0)


@torch.no_grad()
def placement_costs(
    model: BioMLP, layer: int, weight_factor: float = 1.0, scales: Sequence[float] | None = None
) -> torch.Tensor:
    """`M[i, s]`: length cost of the wires of the neurons now at site `i` if they sat at site `s`.

    Two matrix products: `|W_in| @ D_in^T` and `|W_out|^T @ D_out` (folds summed): `(sites, sites)`.
    Only the `A d` part depends on positions; the `l0` part and biases cancel in any swap.
    """
    scales = layer_scales(model) if scales is None else scales
    n_sites = model.num_sites(layer)
    cost = 0.0
    if layer > 0:
        incoming = model.linears[layer - 1].weight.detach().abs()
        cost = cost + scales[layer - 1] * incoming @ model.distance(layer - 1)[:n_sites].T
    if layer < len(model.linears):
        outgoing = model.linears[layer].weight.detach().abs()
        cost = cost + scales[layer] * outgoing.T @ model.distance(layer)[:, :n_sites]
    return weight_factor * cost.view(model.folds[layer], n_sites, n_sites).sum(0)


def swap_gains(
    model: BioMLP, layer: int, weight_factor: float = 1.0, scales: Sequence[float] | None = None
) -> torch.Tensor:
    """`G[i, j]`: change of the connection cost when sites `i` and `j` of `layer` exchange neurons.

    A swap only changes the wires touching the two neurons (no wire joins neurons of one layer),
    so `G = M + M^T - diag(M) 1^T - 1 diag(M)^T` with `M = placement_costs(...)`: `(sites, sites)`.
    """
    m = placement_costs(model, layer, weight_factor, scales)
    diag = m.diagonal()
    return m + m.T - diag[:, None] - diag[None, :]


def swap_sites(
    model: BioMLP, layer: int, i: int, j: int, optimizer: torch.optim.Optimizer | None = None
) -> None:
    """Exchange the neurons at sites `i` and `j` of `layer` (all folds); the function is unchanged."""
    n_sites = model.num_sites(layer)
    first = torch.arange(model.folds[layer]) * n_sites
    moved = torch.cat([first + i, first + j])
    perm = torch.arange(model.widths[layer])
    perm[moved] = torch.cat([first + j, first + i])
    model.permute_layer(layer, perm, optimizer, moved)


@torch.no_grad()
def brute_force_gains(
    model: BioMLP,
    layer: int,
    i: int,
    weight_factor: float = 1.0,
    reduction: str = "sum",
    penalize_last: bool = True,
) -> torch.Tensor:
    """The reference algorithm: for every site `j`, swap `i <-> j`, re-evaluate the whole cost,
    swap back. Returns the cost changes `(sites,)`; slow, kept for tests and the benchmark.
    """
    cost = partial(connection_cost, model, weight_factor, reduction, penalize_last=penalize_last)
    base = cost()
    gains = torch.zeros(model.num_sites(layer), dtype=base.dtype)
    for j in range(len(gains)):
        swap_sites(model, layer, i, j)
        gains[j] = cost() - base
        swap_sites(model, layer, i, j)
    return gains


@torch.no_grad()
def swap_round(
    model: BioMLP,
    top_k: int = 5,
    weight_factor: float = 1.0,
    reduction: str = "sum",
    penalize_last: bool = True,
    optimizer: torch.optim.Optimizer | None = None,
    brute_force: bool = False,
    tolerance: float = 1e-10,
) -> list[tuple[int, int, int]]:
    """One round of BIMT swaps; returns the swaps made as `(layer, i, j)`.

    For every neuron layer, the `top_k` most important sites each move to the partner site with
    the most negative gain (if any lowers the cost by more than `tolerance`). Gains come from
    `swap_gains` (closed form) or, with `brute_force=True`, from re-evaluating the whole cost.
    """
    bio_mlp(model, "BIMT swaps")
    if top_k < 1:
        raise ValueError(f"top_k={top_k} must be >= 1")
    scales = layer_scales(model, reduction, penalize_last)
    swaps = []
    for layer in range(model.num_layers):
        m = None if brute_force else placement_costs(model, layer, weight_factor, scales)
        top = importance(model, layer).topk(min(top_k, model.num_sites(layer))).indices.tolist()
        for i in top:
            if brute_force:
                gains = brute_force_gains(model, layer, i, weight_factor, reduction, penalize_last)
            else:
                gains = m[i] + m[:, i] - m[i, i] - m.diagonal()
            j = int(gains.argmin())
            if j != i and gains[j] < -tolerance:
                swap_sites(model, layer, i, j, optimizer)
                swaps.append((layer, i, j))
                if m is not None:
                    m[[i, j]] = m[[j, i]]
    return swaps


class SwapHook(Hook):
    """Runs `swap_round` every `every` steps (optimizer state moves with the weights)."""

    def __init__(
        self,
        every: int = 200,
        top_k: int = 5,
        weight_factor: float = 1.0,
        reduction: str = "sum",
        penalize_last: bool = True,
    ) -> None:
        if every < 1:
            raise ValueError(f"swap every={every} must be >= 1")
        self.every, self.kwargs = (
            every,
            dict(top_k=top_k, weight_factor=weight_factor, reduction=reduction, penalize_last=penalize_last),
        )
        self.num_swaps = 0

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            self.num_swaps += len(swap_round(state.model, optimizer=state.optimizer, **self.kwargs))


@torch.no_grad()
def optimise_layout(model: BioMLP, weight_factor: float = 1.0, max_rounds: int = 200) -> int:
    """Swap neurons (every site a candidate, closed-form gains) until no swap shortens the wires or
    `max_rounds` rounds have run; returns the number of swaps. The function is unchanged."""
    bio_mlp(model, "BIMT swaps")
    top_k = max(model.num_sites(layer) for layer in range(model.num_layers))
    swaps = 0
    for _ in range(max_rounds):
        made = len(swap_round(model, top_k, weight_factor))
        swaps += made
        if not made:
            break
    return swaps


@torch.no_grad()
def verify_swaps(
    model: BioMLP, x: torch.Tensor, top_k: int = 5, weight_factor: float = 1.0
) -> dict[str, float]:
    """Check the swap machinery on a copy of `model` (in float64): the largest gap between closed-form
    and brute-force gains (first site of every layer), the largest output change after one swap
    round, and the cost before and after that round. `x: (batch, widths[0])`.
    """
    model = copy.deepcopy(bio_mlp(model, "BIMT swaps")).double().cpu()
    x = x.double() if x.is_floating_point() else x
    gap = max(
        float(
            (swap_gains(model, layer, weight_factor)[0] - brute_force_gains(model, layer, 0, weight_factor))
            .abs()
            .max()
        )
        for layer in range(model.num_layers)
    )
    before, cost_before = model(x), float(connection_cost(model, weight_factor))
    swaps = swap_round(model, top_k, weight_factor)
    return {
        "max_gain_error": gap,
        "max_output_change": float((model(x) - before).abs().max()),
        "cost_before": cost_before,
        "cost_after": float(connection_cost(model, weight_factor)),
        "swaps": len(swaps),
    }


def time_swap_round(
    model: BioMLP,
    top_k: int = 30,
    weight_factor: float = 1.0,
    reduction: str = "sum",
    penalize_last: bool = True,
) -> dict[str, float]:
    """Seconds of one swap round with closed-form gains vs the reference brute force (each on its own
    float64 copy of `model`), and whether both chose the same swaps."""
    timings, chosen = {}, {}
    for name, brute in (("closed_form_s", False), ("brute_force_s", True)):
        copy_ = copy.deepcopy(bio_mlp(model, "BIMT swaps")).double().cpu()
        start = time.perf_counter()
        chosen[name] = swap_round(copy_, top_k, weight_factor, reduction, penalize_last, brute_force=brute)
        timings[name] = time.perf_counter() - start
    return {
        **timings,
        "speedup": timings["brute_force_s"] / timings["closed_form_s"],
        "same_swaps": chosen["closed_form_s"] == chosen["brute_force_s"],
        "swaps": len(chosen["closed_form_s"]),
    }
