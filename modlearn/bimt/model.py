"""Brain-Inspired Modular Training (BIMT).

Liu, Gan & Tegmark, "Seeing is Believing: Brain-Inspired Modular Training for Mechanistic
Interpretability", arXiv 2305.08746 (Entropy 26(1):41, 2024); reference code KindXiaoming/BIMT.

Neurons get positions in space; every weight pays for its length,
`CC = sum_l sum_ij |W_ij| (A d_ij + l0) [+ sum_i |b_i| l0]`, with `d_ij` the horizontal (1-D) or
Manhattan (2-D) distance and `l0` the layer spacing; the loss is `task + lambda * CC` with a
piecewise-constant lambda schedule, and every N steps neurons swap places when that shortens the
wires. A swap permutes weights (and the tracked input/output order), so the function is unchanged.
Everything trains through `modlearn.train.fit`: the cost is an objective, schedule and swaps are
hooks. Introduced in `tutorials/06_bimt.ipynb`.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import partial

import torch
import torch.nn as nn

from .data import Dataset, num_batches
from .models import MLP
from .train import (
    CrossEntropy,
    History,
    Hook,
    MeanSquaredError,
    Objective,
    Regularized,
    TrainConfig,
    TrainState,
    evaluate,
    fit,
)
from .validate import ConfigFields, check_float, check_type

GEOMETRIES = ("1d", "2d")
MODES = ("none", "l1", "l1_local", "l1_swap", "bimt")
MODE_NAMES = {
    "none": "no regularization",
    "l1": "L1",
    "l1_local": "L1 + locality",
    "l1_swap": "L1 + swaps",
    "bimt": "BIMT (L1 + locality + swaps)",
}
REDUCTIONS = ("sum", "mean")


# --------------------------------------------------------------------------- geometry


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
    sites = [w // f for w, f in zip(widths, _folds(widths, in_fold, out_fold), strict=True)]
    if geometry == "1d":
        return [row_positions(n) for n in sites]
    return [grid_positions(n) for n in sites[:-1]] + [circle_positions(sites[-1])]


def _folds(widths: Sequence[int], in_fold: int, out_fold: int) -> list[int]:
    folds = [in_fold] + [1] * (len(widths) - 2) + [out_fold]
    for name, fold, width in (("in_fold", in_fold, widths[0]), ("out_fold", out_fold, widths[-1])):
        if fold < 1 or width % fold:
            raise ValueError(f"{name}={fold} must be >= 1 and divide the layer width {width}")
    return folds


def pairwise_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Manhattan distance between positions `a: (n, D)` and `b: (m, D)`: `(n, m)` (|dx| in 1-D)."""
    return (a[:, None, :] - b[None, :, :]).abs().sum(-1)


# --------------------------------------------------------------------------- the model


class BioMLP(nn.Module):
    """An MLP whose neurons sit in space (BIMT's "BioMLP").

    `linears[l]` maps neuron layer `l` to `l + 1`; `activation` follows every linear but the last.
    `forward(x: (batch, widths[0])) -> (batch, widths[-1])` in the original input/output order;
    swaps only move neurons, tracked in the buffers `in_perm` (position k reads input `in_perm[k]`)
    and `out_perm` (position k computes output `out_perm[k]`). With `num_tokens`, `x` holds
    `(batch, in_fold)` token ids, embedded into `widths[0] / in_fold` learned features each
    (modular addition). `geometry` is `"1d"`, `"2d"` or a list of per-layer site positions.
    """

    def __init__(
        self,
        widths: Sequence[int],
        geometry: str | Sequence[torch.Tensor] = "1d",
        activation: type[nn.Module] = nn.SiLU,
        in_fold: int = 1,
        out_fold: int = 1,
        spacing: float = 0.1,
        num_tokens: int | None = None,
    ) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2 or min(widths) < 1:
            raise ValueError(f"widths={widths} must list at least two positive layer widths")
        if not spacing > 0:
            raise ValueError(f"spacing={spacing} (the layer distance l0) must be > 0")
        self.widths, self.spacing = widths, float(spacing)
        self.folds = _folds(widths, in_fold, out_fold)
        sites = (
            layer_sites(widths, geometry, in_fold, out_fold)
            if isinstance(geometry, str)
            else self._checked_sites(geometry)
        )
        self.geometry = geometry if isinstance(geometry, str) else "custom"
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.activation = activation()
        self.embedding = nn.Embedding(num_tokens, widths[0] // in_fold) if num_tokens else None
        for l, pos in enumerate(sites):
            self.register_buffer(f"sites_{l}", pos.float())
        for l in range(len(self.linears)):
            distance = pairwise_distance(self._neuron_positions(l + 1), self._neuron_positions(l))
            self.register_buffer(f"distance_{l}", distance)
        self.register_buffer("in_perm", torch.arange(widths[0]))
        self.register_buffer("out_perm", torch.arange(widths[-1]))

    def _checked_sites(self, geometry: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        sites = [torch.as_tensor(p, dtype=torch.float32) for p in geometry]
        if len(sites) != len(self.widths):
            raise ValueError(
                f"geometry has {len(sites)} layers but widths {self.widths} has "
                f"{len(self.widths)}: give one position tensor per neuron layer"
            )
        for l, (pos, width, fold) in enumerate(zip(sites, self.widths, self.folds, strict=True)):
            if pos.ndim != 2 or pos.shape[0] * fold != width or pos.shape[1] != sites[0].shape[1]:
                raise ValueError(
                    f"geometry of layer {l} has shape {tuple(pos.shape)}, expected "
                    f"({width // fold}, D) with the same D for every layer"
                )
        return sites

    @property
    def num_layers(self) -> int:
        """Number of neuron layers (`len(widths)`)."""
        return len(self.widths)

    def num_sites(self, layer: int) -> int:
        """Positions in neuron layer `layer` (its width divided by its fold)."""
        return self.widths[layer] // self.folds[layer]

    def sites(self, layer: int) -> torch.Tensor:
        """Site positions of neuron layer `layer`: `(num_sites, D)`, D = 1 or 2."""
        return getattr(self, f"sites_{layer}")

    def distance(self, linear: int) -> torch.Tensor:
        """Wire lengths `d_ij` of `linears[linear]`, shaped like its weight."""
        return getattr(self, f"distance_{linear}")

    def _neuron_positions(self, layer: int) -> torch.Tensor:
        """`(width, D)`: neuron `f * sites + s` of fold `f` sits at site `s`."""
        return self.sites(layer).repeat(self.folds[layer], 1)

    def coords(self, layer: int) -> torch.Tensor:
        """Drawing positions of the neurons of layer `layer`: `(width, 2)`.

        1-D: `(x, layer * spacing)`; 2-D grids are drawn in an oblique projection, stacked upward.
        """
        pos = self._neuron_positions(layer).cpu()
        height = torch.full((len(pos),), layer * self.spacing)
        if pos.shape[1] == 1:
            return torch.stack([pos[:, 0], height], dim=1)
        skew = 0.6 * self.spacing
        return torch.stack([pos[:, 0] + 0.5 * pos[:, 1], height + skew * pos[:, 1]], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embedding(x).flatten(1) if self.embedding is not None else x.flatten(1)
        if x.shape[1] != self.widths[0]:
            raise ValueError(f"input has {x.shape[1]} features but the first layer has {self.widths[0]}")
        h = x[:, self.in_perm]
        for l, linear in enumerate(self.linears):
            h = linear(h)
            if l < len(self.linears) - 1:
                h = self.activation(h)
        return h[:, torch.argsort(self.out_perm)]

    @torch.no_grad()
    def permute_layer(
        self,
        layer: int,
        perm: torch.Tensor,
        optimizer: torch.optim.Optimizer | None = None,
        moved: torch.Tensor | None = None,
    ) -> None:
        """Reorder the neurons of layer `layer` by `perm` (new neuron k = old neuron `perm[k]`).

        Incoming rows, biases, outgoing columns, the tracked input/output order and any matching
        optimizer state move together, so outputs and further training are unchanged. `moved`
        (optional) lists the only indices `perm` changes, so a swap copies two slices, not a layer.
        """
        perm = perm.to(self.in_perm.device)
        moved = torch.arange(len(perm), device=perm.device) if moved is None else moved.to(perm.device)
        if layer > 0:
            incoming = self.linears[layer - 1]
            _permute_parameter(incoming.weight, perm, moved, 0, optimizer)
            _permute_parameter(incoming.bias, perm, moved, 0, optimizer)
        else:
            self.in_perm[moved] = self.in_perm[perm[moved]]
        if layer < len(self.linears):
            _permute_parameter(self.linears[layer].weight, perm, moved, 1, optimizer)
        else:
            self.out_perm[moved] = self.out_perm[perm[moved]]


def _permute_parameter(
    param: nn.Parameter,
    perm: torch.Tensor,
    moved: torch.Tensor,
    dim: int,
    optimizer: torch.optim.Optimizer | None,
) -> None:
    tensors = [param.data]
    if optimizer is not None:
        tensors += [
            t
            for t in optimizer.state.get(param, {}).values()
            if torch.is_tensor(t) and t.shape == param.shape
        ]
    for t in tensors:
        t.index_copy_(dim, moved, t.index_select(dim, perm[moved]))


def _check_model(model: nn.Module) -> BioMLP:
    return check_type(
        "model",
        model,
        BioMLP,
        owner="BIMT",
        hint="BIMT needs neurons with positions: build the model with bimt.BioMLP(...)",
    )


# --------------------------------------------------------------------------- connection cost


def layer_scales(model: BioMLP, reduction: str = "sum", penalize_last: bool = True) -> list[float]:
    """Factor of each linear's cost: 1 (`sum`), 1 / #weights (`mean`), 0 for an unpenalized last layer."""
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}: choose one of {REDUCTIONS}")
    scales = [1.0 if reduction == "sum" else 1.0 / lin.weight.numel() for lin in model.linears]
    if not penalize_last:
        scales[-1] = 0.0
    return scales


def connection_cost(
    model: BioMLP,
    weight_factor: float = 1.0,
    reduction: str = "sum",
    penalize_bias: bool = True,
    penalize_last: bool = True,
) -> torch.Tensor:
    """`CC = sum_l s_l [sum_ij |W_ij| (A d_ij + l0) + sum_i |b_i| l0]` as a scalar tensor.

    `A = weight_factor` (0 gives plain L1 scaled by `l0`); `s_l` is 1 (`sum`) or 1 / #terms (`mean`).
    """
    _check_model(model)
    if weight_factor < 0:
        raise ValueError(f"weight_factor={weight_factor} must be >= 0")
    if reduction not in REDUCTIONS:
        raise ValueError(f"unknown reduction {reduction!r}: choose one of {REDUCTIONS}")
    reduce = torch.sum if reduction == "sum" else torch.mean
    penalized = model.linears if penalize_last else model.linears[:-1]
    total = model.linears[0].weight.new_zeros(())
    for l, linear in enumerate(penalized):
        total = total + reduce(linear.weight.abs() * (weight_factor * model.distance(l) + model.spacing))
        if penalize_bias:
            total = total + reduce(linear.bias.abs()) * model.spacing
    return total


def lambda_at(
    step: int,
    total_steps: int,
    lam: float,
    factors: Sequence[float] = (1.0, 10.0, 1.0),
    boundaries: Sequence[float] = (0.25, 0.75),
) -> float:
    """Piecewise-constant lambda: `lam * factors[k]` on the k-th stretch between `boundaries`.

    The paper's default: `lam` for the first quarter, `10 lam` for the middle half, `lam` at the end.
    """
    if lam < 0:
        raise ValueError(f"lambda={lam} must be >= 0")
    if len(factors) != len(boundaries) + 1:
        raise ValueError(f"{len(factors)} factors need {len(factors) - 1} boundaries, got {len(boundaries)}")
    fraction = step / max(1, total_steps)
    stretch = sum(fraction >= b for b in boundaries)
    return lam * factors[stretch]


class LambdaSchedule(Hook):
    """Sets `objective.weight = lambda_at(step, total, ...)` before every step."""

    def __init__(
        self,
        objective: Regularized,
        lam: float,
        factors: Sequence[float] = (1.0, 10.0, 1.0),
        boundaries: Sequence[float] = (0.25, 0.75),
    ) -> None:
        lambda_at(0, 1, lam, factors, boundaries)  # validates
        self.objective, self.lam, self.factors, self.boundaries = objective, lam, factors, boundaries

    def _set(self, state: TrainState) -> None:
        self.objective.weight = lambda_at(
            state.step, state.total_steps, self.lam, self.factors, self.boundaries
        )

    on_fit_start = _set
    on_step_end = _set


# --------------------------------------------------------------------------- swaps


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
    _check_model(model)
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


class Snapshots(Hook):
    """Copies of the model's state every `every` steps (and at start and end): a training movie."""

    def __init__(self, every: int = 100) -> None:
        if every < 1:
            raise ValueError(f"snapshot every={every} must be >= 1")
        self.every = every
        self.steps: list[int] = []
        self.states: list[dict[str, torch.Tensor]] = []
        self._model: nn.Module | None = None

    def _take(self, state: TrainState) -> None:
        if self.steps and self.steps[-1] == state.step:
            return
        self._model = state.model
        self.steps.append(state.step)
        self.states.append(
            {
                k: v.detach().float().cpu().clone() if v.is_floating_point() else v.cpu().clone()
                for k, v in state.model.state_dict().items()
            }
        )

    def on_fit_start(self, state: TrainState) -> None:
        self._take(state)

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            self._take(state)

    def on_fit_end(self, state: TrainState) -> None:
        self._take(state)

    def __len__(self) -> int:
        return len(self.steps)

    def model_at(self, index: int) -> BioMLP:
        """A CPU copy of the model as it was at snapshot `index`."""
        if self._model is None:
            raise ValueError("no snapshot taken yet: pass this hook to train_bimt / fit first")
        model = copy.deepcopy(self._model).cpu()
        model.load_state_dict(self.states[index])
        return model


@torch.no_grad()
def optimise_layout(model: BioMLP, weight_factor: float = 1.0, max_rounds: int = 200) -> int:
    """Swap neurons (every site a candidate, closed-form gains) until no swap shortens the wires or
    `max_rounds` rounds have run; returns the number of swaps. The function is unchanged."""
    _check_model(model)
    top_k = max(model.num_sites(layer) for layer in range(model.num_layers))
    swaps = 0
    for _ in range(max_rounds):
        made = len(swap_round(model, top_k, weight_factor))
        swaps += made
        if not made:
            break
    return swaps


# --------------------------------------------------------------------------- plain MLPs


def from_mlp(model: MLP, geometry: str | Sequence[torch.Tensor] = "1d", spacing: float = 0.1) -> BioMLP:
    """A `BioMLP` computing what `model` (an `ml.models.MLP`) computes: the same widths, weights,
    biases and activation, neuron k of every layer at site k of `geometry`."""
    check_type("model", model, MLP, owner="from_mlp", hint="pass an ml.models.MLP")
    linears = [next(m for m in block if isinstance(m, nn.Linear)) for block in model.blocks] + [model.head]
    bio = BioMLP(model.widths, geometry, type(model.blocks[0][-1]), spacing=spacing)
    with torch.no_grad():
        for mine, theirs in zip(bio.linears, linears, strict=True):
            mine.weight.copy_(theirs.weight)
            mine.bias.copy_(theirs.bias)
    return bio.to(model.head.weight.device)


def to_mlp(model: BioMLP) -> MLP:
    """An `ml.models.MLP` computing what `model` computes, its input and output orders folded into
    the first and last weights (hidden neurons keep their sites' order). No token embedding."""
    _check_model(model)
    if model.embedding is not None or max(model.folds) > 1:
        raise ValueError("to_mlp: a BioMLP with a token embedding or folds has no plain-MLP twin")
    mlp = MLP(model.widths[0], model.widths[1:-1], model.widths[-1], type(model.activation))
    linears = [block[-2] for block in mlp.blocks] + [mlp.head]
    inputs, outputs = torch.argsort(model.in_perm.cpu()), torch.argsort(model.out_perm.cpu())
    with torch.no_grad():
        for l, (mine, theirs) in enumerate(zip(linears, model.linears, strict=True)):
            weight, bias = theirs.weight.detach().cpu(), theirs.bias.detach().cpu()
            if l == 0:
                weight = weight[:, inputs]
            if l == len(linears) - 1:
                weight, bias = weight[outputs], bias[outputs]
            mine.weight.copy_(weight)
            mine.bias.copy_(bias)
    return mlp.to(model.in_perm.device)


def layout_wire_length(weights: Sequence[torch.Tensor], weight_factor: float = 1.0) -> float:
    """`wire_length` of consecutive layers `weights[l]: (out, in)` on a 1-D geometry after
    `optimise_layout`: how short the wires of these weights can be made by moving neurons alone
    (any network, so that a trained layout is no advantage)."""
    widths = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    bio = BioMLP(widths, "1d")
    with torch.no_grad():
        for linear, weight in zip(bio.linears, weights, strict=True):
            linear.weight.copy_(weight.detach().float().cpu())
    optimise_layout(bio, weight_factor)
    return wire_length(bio)


# --------------------------------------------------------------------------- training


@dataclass
class BIMTConfig:
    """BIMT settings; defaults are the paper's symbolic-formula runs (Liu, Gan & Tegmark 2023).

    `mode` is one of the paper's ablations (`MODES`, see `train_bimt`); `steps` is the number of
    optimizer steps. The loop's settings (lr, batch size, seed, ...) live in a `TrainConfig`
    (`paper_train`). `lam` is lambda_0 (1e-3 with `sum` cost; the paper uses 0.1 with `mean` for modular
    addition),
    multiplied by `lam_factors` between `lam_boundaries` (fractions of training). `weight_factor`
    is A (1 symbolic, 2 modular addition / MNIST).
    """

    mode: str = "bimt"
    steps: int = 20_000
    lam: float = 1e-3
    lam_factors: tuple[float, ...] = (1.0, 10.0, 1.0)
    lam_boundaries: tuple[float, ...] = (0.25, 0.75)
    weight_factor: float = 1.0
    reduction: str = "sum"
    penalize_bias: bool = True
    penalize_last: bool = True
    swap_every: int = 200
    top_k: int = 5

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        for name in ("steps", "swap_every", "top_k"):
            fields.integer(name, 1)
        fields.choice("mode", MODES)
        for name in ("lam", "weight_factor"):
            fields.number(name, 0)
        fields.each("lam_factors", check_float, 0)
        boundaries = fields.each("lam_boundaries", check_float, 0, 1)
        fields.choice("reduction", REDUCTIONS)
        for name in ("penalize_bias", "penalize_last"):
            fields.boolean(name)
        if len(self.lam_factors) != len(boundaries) + 1:
            raise ValueError(
                f"BIMTConfig(lam_factors={self.lam_factors}): lam_factors must have one entry more "
                f"than lam_boundaries={boundaries}; pass {len(boundaries) + 1} factors"
            )
        if list(boundaries) != sorted(boundaries):
            raise ValueError(
                f"BIMTConfig(lam_boundaries={boundaries}): lam_boundaries must be increasing "
                "fractions of training; sort them"
            )


def task_objective(data: Dataset) -> Objective:
    """Mean squared error for float targets, cross-entropy for class labels."""
    return MeanSquaredError() if data.train.y.is_floating_point() else CrossEntropy()


def bimt_objective(model: BioMLP, data: Dataset, config: BIMTConfig) -> Objective:
    """The task loss, plus `lambda * CC` for every `config.mode` but `none` (A = 0 without locality)."""
    mode = config.mode
    task = task_objective(data)
    if mode == "none":
        return task
    local = mode in ("l1_local", "bimt")
    penalty = partial(
        connection_cost,
        weight_factor=config.weight_factor if local else 0.0,
        reduction=config.reduction,
        penalize_bias=config.penalize_bias,
        penalize_last=config.penalize_last,
    )
    return Regularized(task, penalty, config.lam, name="cc")


def bimt_hooks(objective: Objective, config: BIMTConfig) -> list[Hook]:
    """The lambda schedule (regularized modes) and the swap hook (`l1_swap`, `bimt`)."""
    hooks: list[Hook] = []
    if isinstance(objective, Regularized):
        hooks.append(LambdaSchedule(objective, config.lam, config.lam_factors, config.lam_boundaries))
    if config.mode in ("l1_swap", "bimt"):
        hooks.append(
            SwapHook(
                config.swap_every, config.top_k, config.weight_factor, config.reduction, config.penalize_last
            )
        )
    return hooks


def paper_train(data: Dataset, **changes) -> TrainConfig:
    """The paper's loop settings for `data`: AdamW without weight decay, lr 2e-3, full batch, seed 0,
    no progress bar; `changes` replace fields, e.g. `paper_train(data, lr=1e-3, batch_size=100)`."""
    defaults = dict(
        lr=2e-3, optimizer="adamw", weight_decay=0.0, batch_size=len(data.train), seed=0, progress=False
    )
    return TrainConfig(**{**defaults, **changes})


def train_bimt(
    model: BioMLP,
    data: Dataset,
    config: BIMTConfig | None = None,
    train: TrainConfig | None = None,
    hooks: Iterable[Hook] = (),
) -> History:
    """Train `model` in place with the paper's ablation `config.mode`, through `fit`.

    Modes: `none`, `l1` (lambda |W| l0), `l1_local` (distance-weighted), `l1_swap` (L1 + swaps
    chosen by wire length), `bimt` (all). `train` (default `paper_train(data)`) is the loop's config;
    `train_bimt` replaces its `max_steps` by `config.steps`, its `epochs` by the epochs those steps
    need, and its `desc`. Validation runs per epoch only when an epoch has several batches
    (full-batch toys validate at the end).
    """
    _check_model(model)
    check_type("data", data, Dataset, owner="train_bimt", hint="pass a Dataset, e.g. data.symbolic_task(...)")
    check_type("config", config, BIMTConfig, owner="train_bimt", optional=True, hint="pass a BIMTConfig(...)")
    check_type(
        "train",
        train,
        TrainConfig,
        owner="train_bimt",
        optional=True,
        hint="pass a TrainConfig(...), e.g. bimt.paper_train(data)",
    )
    config, train = config or BIMTConfig(), train or paper_train(data)
    objective = bimt_objective(model, data, config)
    per_epoch = num_batches(len(data.train), train.batch_size)
    train = replace(
        train, epochs=math.ceil(config.steps / per_epoch), max_steps=config.steps, desc=f"BIMT {config.mode}"
    )
    return fit(
        model,
        data if per_epoch > 1 else data.train,
        train,
        objective,
        hooks=[*bimt_hooks(objective, config), *hooks],
    )


# --------------------------------------------------------------------------- metrics


def _abs_weights(model: BioMLP) -> list[torch.Tensor]:
    return [linear.weight.detach().abs().float().cpu() for linear in model.linears]


def wire_length(model: BioMLP) -> float:
    """|W|-weighted mean wire length `sum |W_ij| d_ij / sum |W_ij|` over every linear."""
    weights = _abs_weights(_check_model(model))
    total = sum(float((w * model.distance(l).float().cpu()).sum()) for l, w in enumerate(weights))
    return total / max(sum(float(w.sum()) for w in weights), 1e-12)


def strong_edges(model: BioMLP, threshold: float = 0.05) -> list[torch.Tensor]:
    """Per linear, the bool mask of wires with |w| > `threshold` x that layer's largest |w|."""
    return [w > threshold * w.max() for w in _abs_weights(_check_model(model))]


def strong_fraction(model: BioMLP, threshold: float = 0.05) -> float:
    """Fraction of wires above `threshold` x their layer's largest |w| (the wires the drawings show)."""
    masks = strong_edges(model, threshold)
    return sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks)


def sparsity(model: BioMLP, threshold: float = 0.01) -> float:
    """Fraction of weights below `threshold` x their layer's largest |w| (0 = dense, 1 = empty)."""
    return 1.0 - strong_fraction(model, threshold)


def weight_graph(model: BioMLP, threshold: float = 0.01):
    """The |W| graph (networkx) of `model`'s linears: see `abs_weight_graph`."""
    return abs_weight_graph([linear.weight for linear in _check_model(model).linears], threshold)


def abs_weight_graph(weights: Sequence[torch.Tensor], threshold: float = 0.01):
    """The |W| graph (networkx) of consecutive layers `weights[l]: (out, in)`: nodes `(layer, neuron)`,
    edges weighted by |w| where |w| > `threshold` x that layer's largest |w|."""
    import networkx as nx

    absolute = [w.detach().abs().float().cpu() for w in weights]
    graph = nx.Graph()
    for l, width in enumerate([absolute[0].shape[1]] + [w.shape[0] for w in absolute]):
        graph.add_nodes_from((l, k) for k in range(width))
    for l, w in enumerate(absolute):
        rows, cols = (w > threshold * w.max()).nonzero(as_tuple=True)
        graph.add_weighted_edges_from(
            ((l, int(c)), (l + 1, int(r)), float(w[r, c])) for r, c in zip(rows, cols, strict=True)
        )
    return graph


def newman_modularity(model: BioMLP, threshold: float = 0.01) -> float:
    """Newman modularity Q of `model`'s |W| graph: see `weights_modularity`."""
    return weights_modularity([linear.weight for linear in _check_model(model).linears], threshold)


def weights_modularity(weights: Sequence[torch.Tensor], threshold: float = 0.01) -> float:
    """Newman modularity Q of the |W| graph of consecutive layers `weights[l]: (out, in)` (any MLP's
    Linear weights), split by greedy modularity maximisation (networkx); 0 for a graph without edges.

    Two equal components with no edge between them give Q = 1 - 2 (1/2)^2 = 0.5; c of them 1 - 1/c.
    """
    from networkx.algorithms import community

    graph = abs_weight_graph(weights, threshold)
    graph.remove_nodes_from([n for n, degree in dict(graph.degree()).items() if degree == 0])
    if graph.number_of_edges() == 0:
        return 0.0
    parts = community.greedy_modularity_communities(graph, weight="weight")
    return float(community.modularity(graph, parts, weight="weight"))


def output_subgraphs(
    model: BioMLP, groups: Sequence[Sequence[int]] | None = None, threshold: float = 0.05
) -> list[list[torch.Tensor]]:
    """For each group of outputs (original indices; default each output alone), the bool masks of
    the neurons of every layer that reach the group through strong wires (see `strong_edges`).
    """
    masks = strong_edges(model, threshold)
    groups = [[o] for o in range(model.widths[-1])] if groups is None else groups
    position = torch.argsort(model.out_perm.cpu())  # position of each original output
    result = []
    for group in groups:
        active = torch.zeros(model.widths[-1], dtype=torch.bool)
        active[position[list(group)]] = True
        layers = [active]
        for mask in reversed(masks):
            active = mask[active].any(dim=0)
            layers.insert(0, active)
        result.append(layers)
    return result


def shared_hidden_neurons(
    model: BioMLP, groups: Sequence[Sequence[int]] | None = None, threshold: float = 0.05
) -> int:
    """Hidden neurons used by more than one output group's sub-graph (0 = disconnected tasks)."""
    subgraphs = output_subgraphs(model, groups, threshold)
    hidden = range(1, model.num_layers - 1)
    return sum(int((torch.stack([sub[l] for sub in subgraphs]).sum(0) > 1).sum()) for l in hidden)


def bimt_metrics(
    model: BioMLP, data: Dataset, groups: Sequence[Sequence[int]] | None = None
) -> dict[str, float]:
    """Test loss (and accuracy), wire length, Newman modularity, shared hidden neurons, sparsity."""
    scores = evaluate(model, data, task_objective(data))
    name = "test_mse" if data.train.y.is_floating_point() else "test_loss"
    result = {name: scores.pop("loss"), **{f"test_{k}": v for k, v in scores.items()}}
    result.update(
        wire_length=wire_length(model),
        modularity=newman_modularity(model),
        shared_hidden=shared_hidden_neurons(model, groups),
        sparsity=sparsity(model),
    )
    return result


def run_ablation(
    make_model,
    data: Dataset,
    modes: Sequence[str] = MODES,
    config: BIMTConfig | None = None,
    train: TrainConfig | None = None,
    groups: Sequence[Sequence[int]] | None = None,
    hooks: dict[str, Sequence[Hook]] | None = None,
) -> dict[str, tuple[BioMLP, dict[str, float]]]:
    """Train a fresh `make_model()` with each mode (same `config`, `train` and seed).

    Returns `{mode: (model, metrics)}`.

    The metrics are `bimt_metrics` plus the training speed `steps_per_s`.
    `hooks[mode]` are extra hooks for that mode's run (e.g. `Snapshots` for a training movie).
    """
    config, train = config or BIMTConfig(), train or paper_train(data)
    results = {}
    for mode in modes:
        if train.seed is not None:
            torch.manual_seed(train.seed)
        model = make_model()
        start = time.perf_counter()
        history = train_bimt(
            model, data, replace(config, mode=mode), train, hooks=(hooks or {}).get(mode, ())
        )
        steps_per_s = history.num_steps / (time.perf_counter() - start)
        results[mode] = (model, {**bimt_metrics(model, data, groups), "steps_per_s": steps_per_s})
    return results


# --------------------------------------------------------------------------- checks and timing of the swaps


@torch.no_grad()
def verify_swaps(
    model: BioMLP, x: torch.Tensor, top_k: int = 5, weight_factor: float = 1.0
) -> dict[str, float]:
    """Check the swap machinery on a copy of `model` (in float64): the largest gap between closed-form
    and brute-force gains (first site of every layer), the largest output change after one swap
    round, and the cost before and after that round. `x: (batch, widths[0])`.
    """
    model = copy.deepcopy(_check_model(model)).double().cpu()
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
        copy_ = copy.deepcopy(_check_model(model)).double().cpu()
        start = time.perf_counter()
        chosen[name] = swap_round(copy_, top_k, weight_factor, reduction, penalize_last, brute_force=brute)
        timings[name] = time.perf_counter() - start
    return {
        **timings,
        "speedup": timings["brute_force_s"] / timings["closed_form_s"],
        "same_swaps": chosen["closed_form_s"] == chosen["brute_force_s"],
        "swaps": len(chosen["closed_form_s"]),
    }
