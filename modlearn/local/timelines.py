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

`record_timelines` shows it: it times E2E and DGL in this process and DGL on K ranks (fresh
processes, started as `torchrun` starts them), and records when each module works (`Timeline`);
`plot_timelines` draws them on one time axis (notebook 02, `benchmarks/pipelined_local.py`).
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import distributed
from .data import Dataset, Split
from .local import (
    LocalConfig,
    LocalNet,
    LocalRun,
    check_block_model,
    local_net,
    split_blocks,
    stage_output_shapes,
    train_local,
)
from .models import BlockModel, make_model
from .train import History, Metrics, Objective, TrainConfig, evaluate, fit


@dataclass
class Timeline:
    """When the modules of one process worked: marks `(seconds, module, phase)`.

    A phase lasts from its mark to the next: "forward" is a module's forward pass (with its head and
    loss), "backward" its backward pass and update, "wait" a rank waiting for its input or for its
    last send to leave. Seconds are `time.perf_counter()`, the machine's monotonic clock on Linux, so
    the timelines of the ranks of one machine share one time axis.
    """

    marks: list[tuple[float, int, str]] = field(default_factory=list)

    def mark(self, module: int, phase: str) -> None:
        """Module `module` (0-based) starts `phase` now."""
        self.marks.append((time.perf_counter(), module, phase))

    def segments(self) -> list[tuple[int, str, float, float]]:
        """`(module, phase, start, end)` of each phase that is work (not "wait")."""
        pairs = itertools.pairwise(self.marks)
        return [(module, phase, t0, t1) for (t0, module, phase), (t1, _, _) in pairs if phase != "wait"]

    def step_starts(self, module: int) -> list[float]:
        """The times `module` starts a forward pass (the last module: one per step; a module that
        sends its output on is marked again when its send has left)."""
        return [t for t, m, phase in self.marks if m == module and phase == "forward"]


@contextlib.contextmanager
def watch_modules(model: BlockModel, bounds: Sequence[tuple[int, int]], timeline: Timeline) -> Iterator[None]:
    """Mark on `timeline` when module k (blocks `bounds[k] = (start, stop)` of `model`) starts its
    forward pass (a pre-hook on its first block) and its backward pass (a gradient hook on its
    last block's output); the block ends with a "wait" mark, closing the last phase."""
    handles = []
    for k, (start, stop) in enumerate(bounds):
        handles.append(model.blocks[start].register_forward_pre_hook(partial(_mark_forward, timeline, k)))
        handles.append(model.blocks[stop - 1].register_forward_hook(partial(_mark_backward, timeline, k)))
    try:
        yield
    finally:
        timeline.mark(0, "wait")
        for handle in handles:
            handle.remove()


def _mark_forward(timeline: Timeline, module: int, _block: nn.Module, _inputs) -> None:
    timeline.mark(module, "forward")


def _mark_backward(timeline: Timeline, module: int, _block: nn.Module, _inputs, output: torch.Tensor) -> None:
    if output.requires_grad:
        output.register_hook(lambda _grad: timeline.mark(module, "backward"))


class PipelineModule(nn.Module):
    """One rank's part of a `LocalNet`: module k's blocks (`stage`) and its auxiliary head."""

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

    def __call__(self, model: PipelineModule, batch) -> tuple[torch.Tensor, Metrics]:
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
    timeline: Timeline | None = None,
) -> LocalRun:
    """DGL with module k of `model` on rank k of a `torchrun` launch of K ranks (K = the modules of
    `config`, default one per block); every rank passes the same `model` (same initial weights).

    Returns, on every rank, the `LocalRun` of the single-process `train_local(mode="dgl")`: the model
    with every module's trained weights (gathered from the ranks), its `LocalNet`, and each module's
    history (`histories[k]` is rank k's). `train.max_steps` or `epochs` is each module's budget, as in
    one process. `timeline` (optional) records when this rank's module works. Raises `ValueError`
    unless launched with as many ranks as modules.
    """
    import torch.distributed as dist

    config = replace(config or LocalConfig(), mode="dgl")
    train = train or TrainConfig()
    check_block_model(model)
    start = time.perf_counter()
    net = local_net(model, data, config)
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
    with distributed.each_rank_alone(), watch_modules(model, net.bounds, timeline):
        history = fit(mine, data.train, own, objective=objective)
    objective.flush()
    _gather_modules(net, rank, world)
    histories: list = [None] * world
    dist.all_gather_object(histories, history.to_dict())
    run = LocalRun(config, model, model, net, [History.from_dict(h) for h in histories], 0.0)
    run.seconds = time.perf_counter() - start
    if data.val is not None and len(data.val):
        run.histories[-1].epochs.append({"step": history.num_steps, **_validation(model, data)})
    return run


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


def _validation(model: nn.Module, data: Dataset) -> dict[str, float]:
    return {f"val_{name}": value for name, value in evaluate(model, data.val).items()}


MODES = {"e2e": "E2E, one process", "dgl": "DGL, one process", "pipelined": "DGL pipelined"}


@dataclass
class PipelineTimes:
    """What `record_timelines` measured: each mode's timelines (one per process) and the largest
    weight difference between DGL pipelined and DGL in one process."""

    timelines: dict[str, list[Timeline]]
    steps: int
    modules: int
    max_weight_difference: float

    def seconds_per_step(self, mode: str, skip: int = 5) -> float:
        """Wall-clock seconds per step of `mode`: the median time between the starts of two steps
        in its last module, from step `skip` on (warm-up excluded; the median ignores the odd
        stall of a shared machine)."""
        starts = torch.tensor(self.step_starts(mode)[skip:], dtype=torch.float64)
        return (starts[1:] - starts[:-1]).median().item()

    def step_starts(self, mode: str) -> list[float]:
        """When each step of `mode` starts in its last module."""
        return self.timelines[mode][-1].step_starts(self.modules - 1)

    def speedup(self, mode: str, over: str) -> float:
        """How many times faster `mode` ran its steps than `over`."""
        return self.seconds_per_step(over) / self.seconds_per_step(mode)

    def together(self, mode: str) -> float:
        """The fraction of `mode`'s wall-clock (warm-up included) during which at least two modules work."""
        return modules_at_work_together([s for t in self.timelines[mode] for s in t.segments()])


def modules_at_work_together(segments: Sequence[tuple[int, str, float, float]]) -> float:
    """The fraction of the time from the first segment's start to the last one's end during which
    two or more modules work (`segments` as `Timeline.segments`, from any processes)."""
    if not segments:
        return 0.0
    edges = sorted([(start, 1) for _, _, start, _ in segments] + [(end, -1) for *_, end in segments])
    together, working, previous = 0.0, 0, edges[0][0]
    for t, change in edges:
        if working >= 2:
            together += t - previous
        working, previous = working + change, t
    return together / (edges[-1][0] - edges[0][0])


def record_timelines(
    data: Dataset,
    hidden: Sequence[int] = (256, 256, 256),
    modules: int = 2,
    steps: int = 200,
    train: TrainConfig | None = None,
) -> PipelineTimes:
    """Train the MLP `hidden` on `data.train` for `steps` steps three ways, each with 1 CPU thread
    per process, and record when each of its `modules` modules works: E2E and DGL in this process,
    then DGL pipelined on `modules` ranks (fresh processes, started as `torchrun` starts them; their
    start-up is not in the timelines). Every run starts from the same weights and walks the same batches.

    `train` sets the batch size, learning rate and seed (the device is the CPU, no validation).
    Raises `RuntimeError` with the ranks' output when the pipelined run fails.
    """
    train = replace(train or TrainConfig(), max_steps=steps, epochs=None, device="cpu", progress=False)
    quiet = replace(data, val=Split(data.train.x[:0].cpu(), data.train.y[:0].cpu()))
    quiet = replace(quiet, train=Split(data.train.x.cpu(), data.train.y.cpu()))
    timelines: dict[str, list[Timeline]] = {mode: [Timeline()] for mode in ("e2e", "dgl")}
    with _one_thread():
        model = _mlp(quiet, hidden, train.seed)
        with watch_modules(model, split_blocks(len(hidden), modules), timelines["e2e"][0]):
            fit(model, quiet.train, train)
        model = _mlp(quiet, hidden, train.seed)
        with watch_modules(model, split_blocks(len(hidden), modules), timelines["dgl"][0]):
            train_local(model, quiet, LocalConfig(mode="dgl", num_modules=modules), train)
    marks, weights = _run_ranks(quiet, hidden, modules, train)
    timelines["pipelined"] = [Timeline(rank_marks) for rank_marks in marks]
    difference = max((weights[k] - tensor).abs().max().item() for k, tensor in model.state_dict().items())
    return PipelineTimes(timelines, steps, modules, difference)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _mlp(data: Dataset, hidden: Sequence[int], seed: int | None) -> BlockModel:
    torch.manual_seed(seed or 0)
    return make_model("mlp", data.input_shape, data.num_classes, hidden=tuple(hidden))


def _run_ranks(data: Dataset, hidden: Sequence[int], modules: int, train: TrainConfig):
    """Every rank's marks and rank 0's trained weights, from `modules` fresh rank processes."""
    with tempfile.TemporaryDirectory(prefix="modlearn-pipeline-") as folder:
        job = {"x": data.train.x, "y": data.train.y, "num_classes": data.num_classes, "hidden": list(hidden)}
        job |= {"modules": modules, "lr": train.lr, "batch_size": train.batch_size, "seed": train.seed or 0}
        job["steps"] = train.max_steps
        torch.save(job, Path(folder) / "job.pt")
        _launch_ranks(modules, [sys.executable, "-m", "modlearn.pipeline", folder])
        results = [torch.load(Path(folder) / f"rank{k}.pt", weights_only=True) for k in range(modules)]
    return [result["marks"] for result in results], results[0]["weights"]


def _launch_ranks(world: int, command: list[str], timeout_s: float = 3600) -> None:
    """Run `command` as `world` ranks on this machine, as `torchrun --standalone` would, but without
    its launcher process (a second PyTorch in memory): each rank gets `RANK`, `WORLD_SIZE`,
    `LOCAL_RANK` and a free local port to meet on, and 1 OpenMP thread. Raises `RuntimeError` with
    the ranks' output when one fails (the others are stopped)."""
    package_root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
    meet = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "WORLD_SIZE": str(world)}
    env = {**os.environ, **meet, "OMP_NUM_THREADS": "1", "PYTHONPATH": path}
    logs = [tempfile.TemporaryFile(mode="w+") for _ in range(world)]
    ranks = [
        subprocess.Popen(
            command, env={**env, "RANK": str(k), "LOCAL_RANK": str(k)}, stdout=log, stderr=subprocess.STDOUT
        )
        for k, log in enumerate(logs)
    ]
    try:
        codes = _wait_all(ranks, time.monotonic() + timeout_s)
        if any(code != 0 for code in codes):  # None: still running at the deadline
            output = []
            for k, log in enumerate(logs):
                log.seek(0)
                output.append(f"--- rank {k} (exit {codes[k]}):\n{log.read()[-3000:]}")
            raise RuntimeError(f"record_timelines: the {world} pipelined ranks failed:\n" + "\n".join(output))
    finally:
        for rank, log in zip(ranks, logs, strict=True):
            rank.kill()
            rank.wait()
            log.close()


def _wait_all(ranks: list[subprocess.Popen], deadline: float) -> list[int | None]:
    """Each rank's exit code; stops waiting when one fails (the others would wait for it) or at the
    deadline (None for those still running)."""
    while time.monotonic() < deadline:
        codes = [rank.poll() for rank in ranks]
        if all(code is not None for code in codes) or any(code for code in codes):
            return codes
        time.sleep(0.05)
    return [rank.poll() for rank in ranks]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rank_main(folder: str) -> None:
    """One rank of `record_timelines`' pipelined run: train, then save its marks (and weights)."""
    torch.set_num_threads(1)
    job = torch.load(Path(folder) / "job.pt", weights_only=True)
    x, y = job["x"], job["y"]
    data = Dataset("pipeline", Split(x, y), Split(x[:0], y[:0]), Split(x[:0], y[:0]), job["num_classes"], "")
    model = _mlp(data, job["hidden"], job["seed"])
    train = TrainConfig(
        lr=job["lr"], batch_size=job["batch_size"], max_steps=job["steps"], epochs=None, seed=job["seed"]
    )
    timeline = Timeline()
    config = LocalConfig(mode="dgl", num_modules=job["modules"])
    train_dgl_pipelined(model, data, config, replace(train, device="cpu", progress=False), timeline)
    rank = int(os.environ["RANK"])
    torch.save({"marks": timeline.marks, "weights": model.state_dict()}, Path(folder) / f"rank{rank}.pt")
    distributed.leave()


def plot_timelines(times: PipelineTimes, first_step: int | None = None, num_steps: int = 4):
    """Which module works when, in each mode, on one time axis: a window as long as `num_steps`
    steps of DGL in one process (at its median step time), from the start of step `first_step` of
    each mode (default: the middle of the run, past the slower first steps). Returns the figure."""
    first_step = times.steps // 2 if first_step is None else first_step
    import matplotlib.pyplot as plt

    window = num_steps * times.seconds_per_step("dgl")
    colours = {"forward": "#4c72b0", "backward": "#dd8452"}
    fig, axes = plt.subplots(
        len(MODES), 1, figsize=(9, 1.1 + 1.0 * len(MODES) * times.modules / 2), sharex=True
    )
    for ax, (mode, title) in zip(axes, MODES.items(), strict=True):
        start = times.step_starts(mode)[first_step]
        for timeline in times.timelines[mode]:
            for module, phase, t0, t1 in timeline.segments():
                if t1 > start and t0 < start + window:
                    lane = (times.modules - 1 - module, 0.8)
                    ax.broken_barh([(1e3 * (t0 - start), 1e3 * (t1 - t0))], lane, color=colours[phase])
        steps = sum(start <= t < start + window for t in times.step_starts(mode))
        ax.set_title(f"{title}: module {times.modules} starts {steps} steps", fontsize=10, loc="left")
        ax.set_yticks([k + 0.4 for k in range(times.modules)])
        ax.set_yticklabels([f"module {times.modules - k}" for k in range(times.modules)])
        ax.set_xlim(0, 1e3 * window)
    axes[-1].set_xlabel("milliseconds from the start of the window")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colour) for colour in colours.values()]
    axes[0].legend(handles, ["forward", "backward + update"], loc="upper right", fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    _rank_main(sys.argv[1])
