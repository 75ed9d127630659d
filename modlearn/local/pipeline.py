"""Decoupled (DGL) training as a pipeline: module k of the model trains on rank k, all at once.

    torchrun --nproc_per_node K my_script.py      # K = the number of modules

DGL gives every module its own loss on a *detached* input, so no gradient ever crosses a module
boundary: module k needs from module k-1 only its output, never its backward pass. Here each rank
holds one module (its blocks and auxiliary head) and runs `fit` on it; rank k receives module k-1's
detached activations of each batch from rank k-1 (`torch.distributed` point-to-point) and sends its
own on to rank k+1 before its backward pass. Rank 0 does not wait for the ranks after it, so while
rank 1 trains on batch b, rank 0 already trains on batch b+1: all modules work at the same time,
where one process (`local.train_local(mode="dgl")`) runs them one after the other.

Every rank walks the same shuffled order (the same seed), and each module sees the same inputs
with the same weights as in one process, so with 1 thread per process and no gradient clipping the
trained weights are those of the single-process DGL bit for bit (`tests/test_pipeline.py`).
Deviation: `grad_clip` clips each module's gradients on its own (one process clips them together).
Validation runs after training, on the assembled model (no per-epoch validation rows).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import distributed
from ..api import Run, Timer, block_model, check_hooks, trainable_copy
from ..data import Dataset
from ..train import Batch, History, Metrics, Objective, TrainConfig, evaluate, fit
from .config import LocalConfig
from .net import LocalNet, local_net, stage_output_shapes
from .timelines import Timeline, WatchModules
from .train import Hooks, LocalExtras


class PipelineModule(nn.Module):
    """One rank's part of a `LocalNet`: module k's blocks (`stage`) and its auxiliary head.
    `h: (batch, ...) -> (batch, classes)`."""

    def __init__(self, stage: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.stage, self.head = stage, head

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.head(self.stage(h))


class PipelineStageObjective(Objective):
    """Rank k's DGL loss: its module on module k-1's activations (received from rank k-1; rank 0
    reads the batch), which it sends on to rank k+1 before its own backward pass.

    `shapes[k]` is one sample's shape after module k. At most one send is in flight: the next one
    waits for it, so the activations it holds are never overwritten. With a `timeline`, the waits
    are marked on it.
    """

    def __init__(
        self, rank: int, world: int, shapes: list[tuple[int, ...]], timeline: Timeline | None = None
    ) -> None:
        self.rank, self.world, self.shapes = rank, world, shapes
        self.timeline = timeline or Timeline()
        self._sending: torch.distributed.Work | None = None

    def __call__(self, model: PipelineModule, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        """`batch = (x: (batch, ...), y: (batch,))`; rank k > 0 replaces `x` by what rank k-1 sends."""
        import torch.distributed as dist

        x, y = batch
        self.timeline.mark(self.rank, "wait")
        if self.rank > 0:
            x = torch.empty((len(y), *self.shapes[self.rank - 1]), dtype=x.dtype, device=x.device)
            dist.recv(x, src=self.rank - 1)
        h = model.stage(x)
        if self.rank < self.world - 1:
            self.timeline.mark(self.rank, "wait")
            self.flush()
            self.timeline.mark(self.rank, "forward")
            self._sending = dist.isend(h.detach().contiguous(), dst=self.rank + 1)
        logits = model.head(h)
        loss = F.cross_entropy(logits.float(), y)
        return loss, {"acc": (logits.argmax(dim=1) == y).float().mean()}

    def flush(self) -> None:
        """Wait until the activations last sent have left."""
        if self._sending is not None:
            self._sending.wait()
            self._sending = None


def train_dgl_pipelined(
    model: nn.Module,
    data: Dataset,
    config: LocalConfig | None = None,
    train: TrainConfig | None = None,
    *,
    hooks: Hooks = (),
    timeline: Timeline | None = None,
) -> Run[LocalExtras]:
    """DGL with module k of a copy of `model` on rank k of a `torchrun` launch of K ranks (K = the
    modules of `config`, default one per block); every rank passes the same `model` (same initial
    weights), which is left unchanged. `model`: a `BlockModel` or a plain `nn.Sequential`.

    Returns, on every rank, the `Run` of the single-process `train_local(mode="dgl")`: `run.model` with
    every module's trained weights (gathered from the ranks), its `LocalNet` in `run.extras.net`, and
    each module's history (`run.histories["module k"]` is rank k-1's; the last holds the validation of
    the assembled model). `train.max_steps` or `epochs` is each module's budget, as in one process;
    `hooks` reach this rank's `fit`. `timeline` (optional) records when this rank's module works.
    Raises `ValueError` unless launched with as many ranks as modules.
    """
    import torch.distributed as dist

    config = replace(config or LocalConfig(), mode="dgl")
    train = train or TrainConfig()
    hooks = check_hooks(hooks, "train_dgl_pipelined")
    trained = trainable_copy(model)
    blocks = block_model(trained, "train_dgl_pipelined")
    with Timer() as timer:
        net = local_net(blocks, data, config)
        ranks = distributed.join(torch.device("cpu"))
        world = ranks.world if ranks else 1
        if world != len(net.stages):
            raise ValueError(
                f"train_dgl_pipelined: {len(net.stages)} modules need as many ranks, found {world}: launch "
                f"with `torchrun --nproc_per_node {len(net.stages)}`, or set LocalConfig(num_modules={world})"
            )
        rank = ranks.rank
        mine = PipelineModule(net.stages[rank], net.heads[rank])
        timeline = timeline or Timeline()
        shapes = stage_output_shapes(net.stages, data.input_shape)
        objective = PipelineStageObjective(rank, world, shapes, timeline)
        own = replace(train, desc=f"module {rank + 1}/{world}", progress=train.progress and rank == 0)
        watch = WatchModules(net.bounds, timeline, model=blocks)
        with distributed.each_rank_alone():
            history = fit(mine, data.train, own, objective=objective, hooks=[*hooks, watch])
        objective.flush()
        _gather_modules(net, rank, world)
        gathered: list = [None] * world
        dist.all_gather_object(gathered, history.to_dict())
    histories = {f"module {k + 1}": History.from_dict(h) for k, h in enumerate(gathered)}
    last = histories[f"module {world}"]
    if data.val is not None and len(data.val):
        validation = {f"val_{name}": value for name, value in evaluate(trained, data.val).items()}
        last.epochs.append({"step": history.num_steps, **validation})
    extras = LocalExtras(config, net, blocks)
    return Run(trained, last, extras, histories, method="local", seconds=timer.seconds)


def _gather_modules(net: LocalNet, rank: int, world: int) -> None:
    """Load every rank's trained module (stage and head) into `net` on every rank."""
    import torch.distributed as dist

    states: list = [None] * world
    mine = {"stage": net.stages[rank].state_dict(), "head": net.heads[rank].state_dict()}
    dist.all_gather_object(states, {key: _cpu(state) for key, state in mine.items()})
    for k, state in enumerate(states):
        net.stages[k].load_state_dict(state["stage"])
        net.heads[k].load_state_dict(state["head"])


def _cpu(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().cpu() for name, tensor in state.items()}
