"""Which module works when: `Timeline` marks, a `Hook` that sets them, and `record_timelines`, which times
E2E and DGL in this process and DGL pipelined on K ranks (fresh processes, started as `torchrun`
starts them); `plot_timelines` draws them on one time axis (notebook 02, `benchmarks/pipelined_local.py`).
"""

from __future__ import annotations

import contextlib
import itertools
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path

import torch
import torch.nn as nn
from matplotlib.figure import Figure
from torch.utils.hooks import RemovableHandle

from ..data import Dataset, Split
from ..models import BlockModel, make_model, split_blocks
from ..train import Hook, TrainConfig, TrainState, fit
from .config import LocalConfig
from .launch import launch_ranks
from .train import train_local


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


def mark_modules(
    model: BlockModel, bounds: Sequence[tuple[int, int]], timeline: Timeline
) -> list[RemovableHandle]:
    """Mark on `timeline` when module k (blocks `bounds[k] = (start, stop)` of `model`) starts its
    forward pass (a pre-hook on its first block) and its backward pass (a gradient hook on its
    last block's output). Returns the hooks' handles (`handle.remove()` ends the watch)."""
    handles = []
    for k, (start, stop) in enumerate(bounds):
        handles.append(model.blocks[start].register_forward_pre_hook(partial(_mark_forward, timeline, k)))
        handles.append(model.blocks[stop - 1].register_forward_hook(partial(_mark_backward, timeline, k)))
    return handles


def _mark_forward(timeline: Timeline, module: int, _block: nn.Module, _inputs: tuple) -> None:
    timeline.mark(module, "forward")


def _mark_backward(
    timeline: Timeline, module: int, _block: nn.Module, _inputs: tuple, output: torch.Tensor
) -> None:
    if output.requires_grad:
        output.register_hook(lambda _grad: timeline.mark(module, "backward"))


class WatchModules(Hook):
    """A `Hook` that marks on `timeline` when each module (blocks `bounds[k]`) of the model `fit`
    trains starts its forward and its backward pass (`mark_modules`), from the fit's start to its
    end, which it marks "wait" (closing the last phase).

    `model`: the `BlockModel` to watch; default the one `fit` trains (`state.model` itself, or the
    first `BlockModel` inside it, as a `LocalNet`'s). A fit of a model without one (E2E's probes,
    a greedy module) is not watched.
    """

    def __init__(
        self, bounds: Sequence[tuple[int, int]], timeline: Timeline, model: BlockModel | None = None
    ) -> None:
        self.bounds, self.timeline, self.model = list(bounds), timeline, model
        self.handles: list[RemovableHandle] = []

    def on_fit_start(self, state: TrainState) -> None:
        found = (m for m in state.model.modules() if isinstance(m, BlockModel))
        model = self.model if self.model is not None else next(found, None)
        if model is not None:
            self.handles = mark_modules(model, self.bounds, self.timeline)

    def on_fit_end(self, state: TrainState) -> None:
        self.timeline.mark(0, "wait")
        for handle in self.handles:
            handle.remove()
        self.handles = []


TIMED_MODES = {"e2e": "E2E, one process", "dgl": "DGL, one process", "pipelined": "DGL pipelined"}


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
    bounds = split_blocks(len(hidden), modules)
    with _one_thread():
        e2e = pipeline_mlp(quiet, hidden, train.seed)
        fit(e2e, quiet.train, train, hooks=[WatchModules(bounds, timelines["e2e"][0])])
        config = LocalConfig(mode="dgl", num_modules=modules)
        model = pipeline_mlp(quiet, hidden, train.seed)  # the aux heads draw from the seed, as on the ranks
        dgl = train_local(model, quiet, config, train, hooks=[WatchModules(bounds, timelines["dgl"][0])])
    marks, weights = _run_ranks(quiet, hidden, modules, train)
    timelines["pipelined"] = [Timeline(rank_marks) for rank_marks in marks]
    trained = dgl.model.state_dict()
    difference = max((weights[k] - tensor).abs().max().item() for k, tensor in trained.items())
    return PipelineTimes(timelines, steps, modules, difference)


@contextlib.contextmanager
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def pipeline_mlp(data: Dataset, hidden: Sequence[int], seed: int | None) -> BlockModel:
    """The MLP of widths `hidden` for `data` that `record_timelines` trains, initialised from `seed`."""
    torch.manual_seed(seed or 0)
    return make_model("mlp", data.input_shape, data.num_classes, hidden=tuple(hidden))


def _run_ranks(
    data: Dataset, hidden: Sequence[int], modules: int, train: TrainConfig
) -> tuple[list[list[tuple[float, int, str]]], dict[str, torch.Tensor]]:
    """Every rank's marks and rank 0's trained weights, from `modules` fresh rank processes."""
    with tempfile.TemporaryDirectory(prefix="modlearn-pipeline-") as folder:
        job = {"x": data.train.x, "y": data.train.y, "num_classes": data.num_classes, "hidden": list(hidden)}
        job |= {"modules": modules, "lr": train.lr, "batch_size": train.batch_size, "seed": train.seed or 0}
        job["steps"] = train.max_steps
        torch.save(job, Path(folder) / "job.pt")
        launch_ranks(modules, [sys.executable, "-m", "modlearn.local.rank", folder])
        results = [torch.load(Path(folder) / f"rank{k}.pt", weights_only=True) for k in range(modules)]
    return [result["marks"] for result in results], results[0]["weights"]


def plot_timelines(times: PipelineTimes, first_step: int | None = None, num_steps: int = 4) -> Figure:
    """Which module works when, in each mode, on one time axis: a window as long as `num_steps`
    steps of DGL in one process (at its median step time), from the start of step `first_step` of
    each mode (default: the middle of the run, past the slower first steps). Returns the figure."""
    first_step = times.steps // 2 if first_step is None else first_step
    import matplotlib.pyplot as plt

    window = num_steps * times.seconds_per_step("dgl")
    colours = {"forward": "#4c72b0", "backward": "#dd8452"}
    fig, axes = plt.subplots(
        len(TIMED_MODES), 1, figsize=(9, 1.1 + 1.0 * len(TIMED_MODES) * times.modules / 2), sharex=True
    )
    for ax, (mode, title) in zip(axes, TIMED_MODES.items(), strict=True):
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
