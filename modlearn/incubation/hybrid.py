"""The hybrid of incubation i (meta stages around target stage i), one incubation (`incubate_stage`), the
job a worker process or a rank runs (`incubation_job`), and where a hybrid's gradient flows."""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterable, Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import Dataset
from ..train import History, Hook, TrainConfig
from .config import IncubationConfig, fit_steps
from .staged import StagedModel

StageState = dict[str, torch.Tensor]
# one incubation's result: (stage index, its trained weights on the CPU, its History)
Result = tuple[int, StageState, History]
# one incubation's inputs: (meta stages, target stage, index, data, config, train)
Job = tuple[Sequence[nn.Module], nn.Module, int, Dataset, IncubationConfig, TrainConfig]


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of `module` whose parameters do not require gradients."""
    return copy.deepcopy(module).requires_grad_(False)


def build_hybrid(meta_stages: Sequence[nn.Module], target_stage: nn.Module, index: int) -> StagedModel:
    """The hybrid of incubation `index`: frozen copies of the meta stages, `target_stage` (not copied,
    trained in place) at position `index`."""
    return StagedModel(
        target_stage if j == index else frozen_copy(meta) for j, meta in enumerate(meta_stages)
    )


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with `n` torch threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def incubate_stage(
    meta_stages: Sequence[nn.Module],
    target_stage: nn.Module,
    index: int,
    data: Dataset,
    config: IncubationConfig,
    train: TrainConfig,
    hooks: Iterable[Hook] = (),
) -> History:
    """Train `target_stage` in place inside the hybrid of position `index`; returns its `History`.

    Only the target stage's parameters reach the optimizer; the loss is the ordinary task loss at
    the hybrid's output. Runs with `config.threads` torch threads and seed `train.seed + index`.
    """
    hybrid = build_hybrid(meta_stages, target_stage, index)
    with torch_threads(config.threads):
        return fit_steps(
            hybrid,
            data,
            train,
            config.incubation_steps,
            config.min_lr,
            f"incubate stage {index}",
            index,
            hooks=hooks,
            params=target_stage.parameters(),
        )


def cpu_state(module: nn.Module) -> StageState:
    """`module`'s state dict, detached copies on the CPU."""
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def incubation_job(job: Job, hooks: Iterable[Hook] = ()) -> Result:
    """One incubation (top level, so that spawned processes can unpickle it): trains the job's
    target stage in place and returns its index, weights and history."""
    meta_stages, target_stage, index, data, config, train = job
    history = incubate_stage(meta_stages, target_stage, index, data, config, train, hooks)
    return index, cpu_state(target_stage), history


def stage_gradients(hybrid: StagedModel, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, list[float]]:
    """One backward pass of the cross-entropy through `hybrid` on `batch = (x: (n, *input), y: (n,))`;
    per stage (lists of K floats):

    - `output_grad`: norm of the gradient reaching the stage's output (0 when none flows there),
    - `weight_grad`: norm of the gradient on the stage's parameters (0 for frozen stages).
    """
    x, y = batch
    device = next(hybrid.parameters()).device
    hybrid.zero_grad(set_to_none=True)
    outputs, h = [], x.to(device)
    for stage in hybrid.stages:
        h = stage(h)
        if h.requires_grad:
            h.retain_grad()
        outputs.append(h)
    F.cross_entropy(h.float(), y.to(device)).backward()
    output_grad = [float(o.grad.norm()) if o.grad is not None else 0.0 for o in outputs]
    weight_grad = [
        math.sqrt(sum(float(p.grad.norm()) ** 2 for p in s.parameters() if p.grad is not None))
        for s in hybrid.stages
    ]
    hybrid.zero_grad(set_to_none=True)
    return {"output_grad": output_grad, "weight_grad": weight_grad}
