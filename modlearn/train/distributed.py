"""Several processes training one model: what `fit` does when launched with `torchrun`.

    torchrun --nproc_per_node 2 my_script.py            # 2 processes on this machine
    torchrun --nnodes 2 --node_rank R --master_addr HOST --nproc_per_node 4 my_script.py   # 2 machines

Every rank holds the whole (on-device) data and walks the same shuffled order; each step's global
batch (`TrainConfig.batch_size` samples) is cut into one contiguous share per rank. After the backward
pass the gradients are averaged across ranks, weighted by share size, so every rank takes the update
the whole batch would give in one process (what `DistributedDataParallel` does; done on the gradients
rather than through its wrapper, so objectives that call a model's blocks directly, as the local methods
do, stay data-parallel too). The step metrics are averaged the same way, so every rank's history is the
single-process history; rank 0 alone writes checkpoints and shows progress. Transport: gloo on the
CPU, NCCL with one GPU per rank.

An objective whose loss is a mean over the batch (cross-entropy, the default) gives the single-process
result up to float rounding; one with batch-level terms (e.g. a contrastive loss over the whole batch)
sees each rank's share only, which is ordinary data-parallel training but not the same objective.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass

import torch
import torch.nn as nn

_alone: ContextVar[bool] = ContextVar("modlearn_each_rank_alone", default=False)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the `world` ranks that train together."""

    rank: int
    world: int

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes files and shows progress."""
        return self.rank == 0


def world_size() -> int:
    """The number of ranks when launched by `torchrun` (`WORLD_SIZE`), else 1."""
    return int(os.environ.get("WORLD_SIZE", "1")) if torch.distributed.is_available() else 1


@contextlib.contextmanager
def each_rank_alone() -> Iterator[None]:
    """Inside this block `fit` trains in its own process only, even under `torchrun`: for work that
    gives each rank a model of its own (Deep Incubation's stages on ranks)."""
    token = _alone.set(True)
    try:
        yield
    finally:
        _alone.reset(token)


def join(device: torch.device) -> Ranks | None:
    """The ranks training together, or None for a single process (or inside `each_rank_alone`).
    Under `torchrun` the default process group is started here when nobody did (gloo on the CPU,
    NCCL on CUDA, where each rank takes GPU `LOCAL_RANK`)."""
    import torch.distributed as dist

    if _alone.get() or not dist.is_available() or (not dist.is_initialized() and world_size() == 1):
        return None
    if not dist.is_initialized():
        if device.type == "cuda":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if dist.get_world_size() == 1:
        return None
    return Ranks(dist.get_rank(), dist.get_world_size())


def leave() -> None:
    """End this rank's part: wait for the other ranks, then close the process group (nothing without
    one). Call it last in a `torchrun` script: a rank that exits while gloo still talks to another
    can abort in C++ ("terminate called without an active exception")."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def rank_device(device: torch.device, ranks: Ranks | None) -> torch.device:
    """`device`, made this rank's own GPU (`LOCAL_RANK`) when it is CUDA and several ranks train."""
    if ranks is None or device.type != "cuda" or device.index is not None:
        return device
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def broadcast_module(module: nn.Module) -> None:
    """Copy rank 0's parameters and buffers into every rank's `module` (same start everywhere)."""
    import torch.distributed as dist

    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def shard(
    batch: tuple[torch.Tensor, torch.Tensor], ranks: Ranks
) -> tuple[tuple[torch.Tensor, torch.Tensor], float]:
    """This rank's contiguous share of a global `batch (x, y)` and its weight `world * share / batch`.

    Shares differ in size by at most one sample. A rank whose share would be empty (a last batch
    smaller than the world) gets the batch's first sample with weight 0, so it still takes part in
    every collective but adds nothing."""
    x, y = batch
    n = len(x)
    base, extra = divmod(n, ranks.world)
    start = ranks.rank * base + min(ranks.rank, extra)
    size = base + (ranks.rank < extra)
    if size == 0:
        return (x[:1], y[:1]), 0.0
    return (x[start : start + size], y[start : start + size]), ranks.world * size / n


def average_gradients(params: list[nn.Parameter], weight: float, ranks: Ranks) -> None:
    """Replace each parameter's gradient by the share-weighted mean over ranks: the gradient of the
    mean loss over the global batch when each rank's is the mean over its share."""
    import torch.distributed as dist

    grads = [torch.zeros_like(p) if p.grad is None else p.grad for p in params]
    if not grads:
        return
    flat = torch.cat([grad.reshape(-1) for grad in grads]) * (weight / ranks.world)
    dist.all_reduce(flat)  # one message per step: for a small model the latency of many costs more
    for param, grad, averaged in zip(params, grads, flat.split([g.numel() for g in grads]), strict=True):
        param.grad = grad.copy_(averaged.view_as(grad))


def average_metrics(metrics: dict[str, torch.Tensor], weight: float, ranks: Ranks) -> dict[str, torch.Tensor]:
    """The step's metrics (scalar tensors) as share-weighted means over ranks, the same on every rank."""
    import torch.distributed as dist

    names = sorted(metrics)
    if not names:
        return {}
    values = torch.stack([metrics[name].detach().float().reshape(()) for name in names])
    values = values * (weight / ranks.world)
    dist.all_reduce(values)
    return dict(zip(names, values.unbind(), strict=True))
