"""BIMT's objective: the connection cost, its lambda schedule, and the task loss it is added to."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch

from ..data import Dataset
from ..train import CrossEntropy, Hook, MeanSquaredError, Objective, Regularized, TrainState
from .config import REDUCTIONS, BIMTConfig
from .model import BioMLP, bio_mlp


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
    bio_mlp(model, "connection_cost")
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
