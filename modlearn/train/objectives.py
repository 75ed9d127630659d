"""What `fit` minimises: an objective `objective(model, batch) -> (loss, metrics)`.

Methods plug in here: they pass an `Objective` of their own or wrap the task loss in `Regularized`
(clusterability, BIMT's connection cost, ...); none of them writes a loop.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..validate import check_float

Batch = tuple[torch.Tensor, torch.Tensor]
Metrics = dict[str, torch.Tensor]


class Objective:
    """A training loss: `objective(model, batch) -> (loss, metrics)`.

    `task` is what validation reports (regularizers excluded). An objective that runs
    `backward()` itself (local training does, block by block) sets `handles_backward = True`.
    """

    handles_backward: bool = False

    @property
    def task(self) -> Objective:
        """The objective validation reports: this one, or the task loss a regularizer wraps."""
        return self

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        raise NotImplementedError


class CrossEntropy(Objective):
    """Classification: cross-entropy loss, and accuracy as a metric. `y: (batch,)` class indices."""

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        x, y = batch
        logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        return loss, {"acc": (logits.argmax(dim=1) == y).float().mean()}


class MeanSquaredError(Objective):
    """Regression: mean squared error. `y` has the model output's shape."""

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        x, y = batch
        return F.mse_loss(model(x).float(), y), {}


class Regularized(Objective):
    """`task + weight * penalty(model)`: the way methods add a term (clusterability, BIMT, ...).

    `weight` is an attribute so a hook can schedule it during training.
    """

    def __init__(
        self,
        task: Objective,
        penalty: Callable[[nn.Module], torch.Tensor],
        weight: float,
        name: str = "penalty",
    ) -> None:
        weight = check_float("weight", weight, 0, owner="Regularized")
        self._task, self.penalty, self.weight, self.name = task, penalty, weight, name

    @property
    def task(self) -> Objective:
        return self._task

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        loss, metrics = self._task(model, batch)
        penalty = self.penalty(model)
        metrics = {**metrics, "task_loss": loss.detach(), self.name: penalty.detach()}
        return loss + self.weight * penalty, metrics
