"""The incubations on `torchrun` ranks: rank r incubates stages r, r + world, ... and every rank
receives every stage (the process group of `modlearn.train.distributed`: gloo on the CPU, NCCL on GPUs)."""

from __future__ import annotations

from collections.abc import Iterable

import torch

from ..train import Hook, distributed
from .hybrid import Job, Result, incubation_job


def incubate_on_ranks(jobs: list[Job], hooks: Iterable[Hook] = ()) -> list[Result]:
    """Rank r runs jobs r, r + world, ... (with `hooks`, in its own process); returns every rank's
    results on every rank. NCCL when there is one GPU per rank, else gloo."""
    import torch.distributed as dist

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = torch.device("cuda" if gpus >= distributed.world_size() else "cpu")
    ranks = distributed.join(device)
    rank, world = (ranks.rank, ranks.world) if ranks else (0, 1)
    with distributed.each_rank_alone():  # each rank trains stages of its own: no data-parallel fit
        mine = [incubation_job(job, hooks) for job in jobs[rank::world]]
    if ranks is None:
        return mine
    gathered: list = [None] * world
    dist.all_gather_object(gathered, mine)
    return [result for part in gathered for result in part]
