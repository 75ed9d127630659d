"""The one training loop of the series: `fit`, `evaluate`, `History`, checkpoints.

Methods plug in through an *objective* `objective(model, batch) -> (loss, metrics)` and *hooks*
called at step and epoch ends; none of them writes a loop of its own.
Introduced in `tutorials/01_e2e_backprop.ipynb`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import random
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm
from tqdm.notebook import tqdm as notebook_tqdm

from . import distributed
from .data import Dataset, Split, iterate_batches, num_batches
from .env import resolve_device, seed_everything
from .validate import ConfigFields, check_device, check_evaluate_inputs, check_fit_inputs, check_float

Batch = tuple[torch.Tensor, torch.Tensor]
Metrics = dict[str, torch.Tensor]
OPTIMIZERS = ("adam", "adamw", "sgd")
CHECKPOINT_FORMAT = "modlearn-checkpoint"
RESUME_FIELDS = ("batch_size", "lr", "optimizer", "weight_decay", "momentum", "betas", "grad_clip", "seed")


# --------------------------------------------------------------------------- objectives


class Objective:
    """A training loss: `objective(model, batch) -> (loss, metrics)`.

    `task` is what validation reports (regularizers excluded). An objective that runs
    `backward()` itself (local training does, block by block) sets `handles_backward = True`.
    """

    handles_backward: bool = False

    @property
    def task(self) -> Objective:
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


# --------------------------------------------------------------------------- config and state


@dataclass
class TrainConfig:
    """Settings of `fit`. Defaults: Adam, lr 1e-3, betas (0.9, 0.999), batch 128, bf16 autocast on CUDA.

    `channels_last=None` stores images and conv weights channels-last when the model has a
    `Conv2d` (faster convolutions on CPU and GPU; the same function); `False` keeps NCHW.
    `resume_strict` refuses a checkpoint written with other `RESUME_FIELDS` or another training-set
    size; `stop_on_nonfinite` ends the run with a `FloatingPointError` at the first NaN/inf loss.

    A budget in optimizer steps: `TrainConfig(epochs=None, max_steps=600)` trains exactly 600 steps,
    however large the training split (an epoch budget gives a small dataset only a few steps).
    """

    epochs: int | None = 5
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float | None = None
    max_steps: int | None = None
    device: str = "auto"
    amp: bool = True
    compile: bool = False
    seed: int | None = 0
    progress: bool = True
    eval_batch_size: int = 2048
    checkpoint_path: str | None = None
    checkpoint_every: int = 1
    resume: bool = False
    channels_last: bool | None = None
    desc: str = "train"
    resume_strict: bool = True
    stop_on_nonfinite: bool = True

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        for name in ("batch_size", "eval_batch_size", "checkpoint_every"):
            fields.integer(name, 1)
        fields.integer("epochs", 1, optional=True)
        fields.integer("max_steps", 1, optional=True)
        if self.epochs is None and self.max_steps is None:
            raise ValueError(
                "TrainConfig(epochs=None, max_steps=None): a budget in steps needs max_steps; "
                "pass max_steps=600 (say) or a number of epochs"
            )
        fields.integer("seed", 0, optional=True)
        fields.number("lr", 0, low_open=True)
        fields.number("weight_decay", 0)
        fields.number("momentum", 0, 1, high_open=True)
        fields.each("betas", check_float, 0, 1, high_open=True)
        if len(self.betas) != 2:
            raise ValueError(
                f"TrainConfig(betas={self.betas}): betas must be a pair (beta1, beta2) of Adam's "
                "decay rates; pass e.g. (0.9, 0.999)"
            )
        fields.number("grad_clip", 0, low_open=True, optional=True)
        fields.choice("optimizer", OPTIMIZERS)
        for name in ("amp", "compile", "progress", "resume", "resume_strict", "stop_on_nonfinite"):
            fields.boolean(name)
        fields.boolean("channels_last", optional=True)
        check_device("device", self.device, owner="TrainConfig")
        if self.resume and not self.checkpoint_path:
            raise ValueError(
                "TrainConfig(resume=True): resume needs a checkpoint_path to resume from; "
                "pass checkpoint_path='run.pt' or resume=False"
            )

    def num_epochs(self, steps_per_epoch: int) -> int:
        """The epochs a run spans: `epochs`, or as many as `max_steps` needs when `epochs` is None."""
        return self.epochs if self.epochs is not None else -(-self.max_steps // steps_per_epoch)


@dataclass
class History:
    """What `fit` measured: per-step columns (`steps["loss"]`, ...) and one dict per epoch."""

    steps: dict[str, list[float]] = field(default_factory=dict)
    epochs: list[dict[str, float]] = field(default_factory=list)
    interrupted: bool = False

    def log_steps(self, columns: dict[str, list[float]]) -> None:
        for key, values in columns.items():
            self.steps.setdefault(key, []).extend(values)

    @property
    def num_steps(self) -> int:
        return len(self.steps.get("loss", []))

    def last(self, key: str) -> float:
        """The latest epoch value of `key` (e.g. `"val_acc"`)."""
        for row in reversed(self.epochs):
            if key in row:
                return row[key]
        raise KeyError(
            f"{key!r} was never recorded; epoch keys: {sorted(self.epochs[-1]) if self.epochs else []}"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> History:
        return cls(
            steps={k: list(v) for k, v in state["steps"].items()},
            epochs=[dict(r) for r in state["epochs"]],
            interrupted=bool(state["interrupted"]),
        )

    def plot(self, title: str | None = None):
        """Loss and accuracy curves (steps smoothed, epochs as markers). Returns the figure."""
        from .viz import plot_history

        return plot_history(self, title=title)


@dataclass
class TrainState:
    """What hooks see: the model, optimizer, counters and the latest step's metrics; `ranks` when
    several processes train together (`torchrun`, see `modlearn.distributed`), else None."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    config: TrainConfig
    history: History
    device: torch.device
    total_steps: int
    step: int = 0
    epoch: int = 0
    metrics: Metrics = field(default_factory=dict)
    stop: bool = False
    ranks: distributed.Ranks | None = None


class Hook:
    """Called by `fit`; override what you need. Set `state.stop = True` to end training early.

    A hook (or objective) with state to carry through a resume defines `state_dict()` and
    `load_state_dict(state)` (tensors, numbers, strings, lists, dicts): `fit` stores it in each
    checkpoint and, when resuming, loads it after `on_fit_start`.
    """

    def on_fit_start(self, state: TrainState) -> None: ...

    def on_step_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...

    def on_fit_end(self, state: TrainState) -> None: ...


class _CallableHook(Hook):
    def __init__(self, fn: Callable[[TrainState], None]) -> None:
        self.fn = fn

    def on_step_end(self, state: TrainState) -> None:
        self.fn(state)


def as_hook(hook: Hook | Callable[[TrainState], None]) -> Hook:
    """`hook` itself, or a plain function `f(state)` wrapped as a hook called after every step."""
    return hook if isinstance(hook, Hook) else _CallableHook(hook)


# --------------------------------------------------------------------------- the loop


def show_progress(config: TrainConfig) -> bool:
    """`config.progress`, unless the environment sets `TQDM_DISABLE` (as headless runs of the series do:
    nobody watches their bars)."""
    return config.progress and os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true", "yes")


class _NotebookBar(notebook_tqdm):
    """tqdm's notebook widget, replaced on close by one line of text.

    A closed widget leaves its view in the cell's output but not its state, so a saved and reopened
    notebook would show "Error displaying widget: model not found". Shown through a display handle, the
    bar's output is overwritten with a plain summary when it closes, stopped early or not.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, display=False, **kwargs)
        self._handle = None
        if not self.disable:
            from IPython.display import display

            self._handle = display(self.container, display_id=True)

    def close(self) -> None:
        if self.disable or self._handle is None:
            return super().close()
        done = self.n
        super().close()
        stopped = "" if not self.total or done >= self.total else " (stopped early)"
        elapsed = self.format_interval(self.format_dict["elapsed"])
        summary = f"{self.desc or 'steps'}: {done}/{self.total} optimizer steps in {elapsed}{stopped}"
        self._handle.update({"text/plain": summary}, raw=True)
        self._handle = None


def progress_bar(total: int, initial: int, desc: str | None, disable: bool) -> tqdm:
    """A progress bar over optimizer steps: tqdm's text bar in a terminal; in a notebook a widget that
    turns into one line of text when it closes, so a saved notebook holds no orphaned widget."""
    cls = _NotebookBar if issubclass(tqdm, notebook_tqdm) else tqdm
    return cls(total=total, initial=initial, desc=desc, disable=disable, leave=False, dynamic_ncols=True)


def fit(
    model: nn.Module,
    data: Dataset | Split | Sequence[torch.Tensor],
    config: TrainConfig | None = None,
    objective: Objective | None = None,
    hooks: Iterable[Hook | Callable[[TrainState], None]] = (),
    params: Iterable[torch.nn.Parameter] | None = None,
    val: Split | None = None,
) -> History:
    """Train `model` in place and return its `History`.

    - `data`: a `Dataset` (trains on `.train`, validates on `.val`), a `Split`, or `(x, y)`.
    - `objective`: default cross-entropy; methods pass their own (see `Objective`).
    - `hooks`: `Hook` objects or plain callables run after every step.
    - `params`: the parameters to optimize (default: all that require grad).

    The data moves to the device once; batches are on-device slices. On CUDA the forward pass
    runs under bf16 autocast. Ctrl-C (KeyboardInterrupt) stops training and returns what was
    done so far, with the model as trained (a second Ctrl-C while stopping is ignored); a
    checkpoint is written when `checkpoint_path` is set, also at the run's end and at a
    `max_steps` or `state.stop` stop. `resume=True` continues that checkpoint's run at the step
    where it stopped, mid-epoch included: on the CPU the result equals the uninterrupted run bit
    for bit (`max_steps` counts the steps of the whole run).
    A non-finite loss raises `FloatingPointError` naming the step (the history so far is its
    `.history`; the checkpoint on disk stays the last finite one) unless `stop_on_nonfinite=False`.
    Launched with `torchrun`, it trains data-parallel across the ranks (`modlearn.distributed`): each
    global batch is shared out, gradients and step metrics are averaged, rank 0 writes the checkpoint
    (which resumes with another number of ranks, or in one process).
    """
    config = TrainConfig() if config is None else config
    objective = CrossEntropy() if objective is None else objective
    hooks = [as_hook(h) for h in hooks]
    train_split, val_split = _splits(data, val)
    check_fit_inputs(model, config, objective, train_split, val_split)
    device = resolve_device(config.device)
    ranks = distributed.join(device)
    device = distributed.rank_device(device, ranks)
    if config.seed is not None:
        seed_everything(config.seed)
    model.to(device)
    if ranks is not None:
        distributed.broadcast_module(model)
    train_split, val_split = train_split.to(device), (val_split.to(device) if val_split else None)
    if _use_channels_last(config, model, train_split):
        model.to(memory_format=torch.channels_last)
        train_split = Split(train_split.x.contiguous(memory_format=torch.channels_last), train_split.y)
    trainable = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    if not trainable:
        raise ValueError(
            "no parameter to train: every parameter has requires_grad=False "
            "(pass `params=` or unfreeze the model)"
        )
    optimizer = make_optimizer(trainable, config)
    history = History()
    steps_per_epoch = num_batches(len(train_split), config.batch_size)
    epochs = config.num_epochs(steps_per_epoch)
    total = epochs * steps_per_epoch
    total = min(total, config.max_steps) if config.max_steps else total
    state = TrainState(model, optimizer, config, history, device, total_steps=total, ranks=ranks)
    parts = _stateful_parts(objective, hooks)
    run = _run_settings(config, len(train_split))
    saved = _open_resume(config, model, run, parts) if config.resume else None
    carried = _restore_run(saved, state, steps_per_epoch) if saved is not None else 0.0
    forward_model = torch.compile(model) if config.compile else model
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if config.amp and device.type == "cuda"
        else contextlib.nullcontext()
    )
    shows = show_progress(config) and (ranks is None or ranks.is_main)
    bar = progress_bar(total, state.step, config.desc, disable=not shows)
    for hook in hooks:
        hook.on_fit_start(state)
    if saved is not None:
        for name, part in parts.items():
            part.load_state_dict(saved["parts"][name])
        _set_rng_state(saved["rng"])
    log = _EpochLog(rng=torch.get_rng_state(), seconds=carried)

    def save() -> None:
        if ranks is not None and not ranks.is_main:
            return
        save_checkpoint(
            config.checkpoint_path,
            model,
            optimizer,
            history,
            state.step // steps_per_epoch,
            state.step,
            extra={
                "run": run,
                "rng": _rng_state(log.rng),
                "parts": {name: part.state_dict() for name, part in parts.items()},
            },
        )

    try:
        while state.epoch < epochs and state.step < total and not state.stop:
            _run_epoch(
                state, forward_model, train_split, val_split, objective, trainable, hooks, autocast, bar, log
            )
            ending = state.stop or state.step >= total or state.epoch >= epochs
            if config.checkpoint_path and (ending or state.epoch % config.checkpoint_every == 0):
                save()
    except KeyboardInterrupt:
        with _sigint_ignored():
            history.interrupted = True
            print(
                f"Interrupted at step {state.step}/{total}: returning the history and the model as trained."
            )
            _log_epoch(state, log, val_split, objective, bar)
            if config.checkpoint_path:
                save()
    except FloatingPointError as err:
        _log_epoch(state, log, val_split, objective, bar)
        err.history = history
        raise
    finally:
        bar.close()
    for hook in hooks:
        hook.on_fit_end(state)
    return history


@dataclass
class _EpochLog:
    """The running epoch's step metrics, timer and first global step, and the torch RNG state
    after the latest completed step (what a checkpoint stores, so a resume replays no draw)."""

    rng: torch.Tensor
    seconds: float = 0.0
    first_step: int = 0
    metrics: list[Metrics] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def restart(self) -> float:
        """Clear the metrics and the timer; returns the seconds the epoch took."""
        seconds = self.seconds + time.perf_counter() - self.started
        self.metrics, self.seconds, self.started = [], 0.0, time.perf_counter()
        return seconds


def _run_epoch(
    state: TrainState,
    forward_model: nn.Module,
    train: Split,
    val: Split | None,
    objective: Objective,
    trainable: list[torch.nn.Parameter],
    hooks: list[Hook],
    autocast,
    bar,
    log: _EpochLog,
) -> None:
    """One pass over the training split (its remaining batches after a mid-epoch resume);
    appends its steps and epoch summary to the history."""
    config, model, optimizer = state.config, state.model, state.optimizer
    generator = torch.Generator().manual_seed((config.seed or 0) * 100_003 + state.epoch)
    per_epoch = num_batches(len(train), config.batch_size)
    log.first_step = state.epoch * per_epoch
    log.started = time.perf_counter()
    model.train()
    batches = iterate_batches(train.x, train.y, config.batch_size, generator=generator)
    for batch in itertools.islice(batches, state.step - log.first_step, None):
        optimizer.zero_grad(set_to_none=True)
        batch, weight = distributed.shard(batch, state.ranks) if state.ranks else (batch, 1.0)
        with autocast:
            loss, metrics = objective(forward_model, batch)
        step_metrics = {"loss": loss.detach(), **metrics}
        if state.ranks:
            step_metrics = distributed.average_metrics(step_metrics, weight, state.ranks)
        if config.stop_on_nonfinite and not bool(torch.isfinite(step_metrics["loss"]).all()):
            raise _nonfinite_loss(state, step_metrics["loss"])
        if not objective.handles_backward:
            loss.backward()
        if state.ranks:
            distributed.average_gradients(trainable, weight, state.ranks)
        if config.grad_clip:
            torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
        optimizer.step()
        state.step += 1
        log.rng = torch.get_rng_state()
        state.metrics = step_metrics
        log.metrics.append(state.metrics)
        bar.update(1)
        for hook in hooks:
            hook.on_step_end(state)
        if state.step >= state.total_steps or state.stop:
            break
    _log_epoch(state, log, val, objective, bar)
    state.epoch += 1
    for hook in hooks:
        hook.on_epoch_end(state)
    if state.step - log.first_step == per_epoch:
        log.rng = torch.get_rng_state()


def _log_epoch(state: TrainState, log: _EpochLog, val: Split | None, objective: Objective, bar) -> None:
    """Move the epoch's step metrics into the history and append its row: means over all the
    epoch's steps (those before a resume included), and validation metrics."""
    if not log.metrics:
        return
    columns = {key: torch.stack([m[key].float() for m in log.metrics]).tolist() for key in log.metrics[0]}
    state.history.log_steps(columns)
    seconds = log.restart()
    done = state.step - log.first_step
    row = {"epoch": state.epoch + 1, "step": state.step, "seconds": seconds}
    row.update({f"train_{k}": sum(state.history.steps[k][-done:]) / done for k in columns})
    if val is not None and len(val):
        row.update(
            {
                f"val_{k}": v
                for k, v in evaluate(state.model, val, objective, state.config.eval_batch_size).items()
            }
        )
    state.history.epochs.append(row)
    bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k.startswith(("train_loss", "val_"))})


def _nonfinite_loss(state: TrainState, loss: torch.Tensor) -> FloatingPointError:
    return FloatingPointError(
        f"loss={loss.detach().float().item()} at step {state.step + 1} (epoch {state.epoch + 1}): training "
        f"stopped before that step's update; the history of steps 1..{state.step} is this error's `.history` "
        "and a checkpoint on disk stays the last finite one. Lower lr, set grad_clip, or pass "
        "stop_on_nonfinite=False to train on."
    )


@contextlib.contextmanager
def _sigint_ignored() -> Iterator[None]:
    """While the block runs, Ctrl-C prints a note instead of raising (in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _note_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous if previous is not None else signal.default_int_handler)


def _note_interrupt(signum: int, frame: Any) -> None:
    print("Already stopping: the history and the checkpoint are being saved.")


@torch.no_grad()
def evaluate(
    model: nn.Module,
    data: Dataset | Split | Sequence[torch.Tensor],
    objective: Objective | None = None,
    batch_size: int = 2048,
) -> dict[str, float]:
    """Mean loss and metrics of `objective.task` (default cross-entropy) over `data`.

    A `Dataset` is evaluated on its test split. The model is left in eval mode.
    """
    split = data.test if isinstance(data, Dataset) else _as_split(data)
    task = (objective or CrossEntropy()).task
    check_evaluate_inputs(model, split, task, batch_size)
    device = next(model.parameters()).device
    model.eval()
    totals: dict[str, float] = {}
    for x, y in iterate_batches(split.x.to(device), split.y.to(device), batch_size, shuffle=False):
        loss, metrics = task(model, (x, y))
        for key, value in {"loss": loss, **metrics}.items():
            totals[key] = totals.get(key, 0.0) + float(value) * len(x)
    return {key: value / len(split) for key, value in totals.items()}


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """Model outputs for `x` (on the model's device), concatenated on the CPU."""
    device = next(model.parameters()).device
    model.eval()
    return torch.cat(
        [model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    )


def make_optimizer(params: Iterable, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW (with `config.betas`), or SGD (with momentum), as `config` says."""
    params = list(params)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    history: History,
    epoch: int,
    step: int,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write weights, optimizer state, history, counters and `extra` (what `fit` needs to resume:
    RNG states, run settings, hook states) with a SHA-256 of the contents.

    The write is atomic (a `.tmp` file next to `path`, fsync, rename); the file loads with
    `torch.load(path, weights_only=True)`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "history": history.to_dict(),
        "epoch": epoch,
        "step": step,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        **(extra or {}),
    }
    payload["sha256"] = _digest(payload)
    tmp = _tmp_path(path)
    try:
        with open(tmp, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if os.name == "posix":
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    history: History | None = None,
) -> tuple[int, int]:
    """Restore a checkpoint into `model` (and `optimizer`, `history`); returns `(epoch, step)`.

    A missing, empty, truncated, corrupt (checksum) or foreign file, or one written for another
    architecture, is a `ValueError` naming the file and the problem.
    """
    saved = _read_checkpoint(path)
    _apply_checkpoint(path, saved, model, optimizer, history)
    return int(saved["epoch"]), int(saved["step"])


def _read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The verified contents of a checkpoint written by `save_checkpoint`, on the CPU.

    Removes a stale `.tmp` left next to it by an interrupted write.
    """
    path = Path(path)
    _tmp_path(path).unlink(missing_ok=True)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist or is not a file: check the path")
    if path.stat().st_size == 0:
        raise ValueError(
            f"checkpoint {str(path)!r} is empty (0 bytes): its write was cut off; delete it and train again"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(
            f"checkpoint {str(path)!r} cannot be read ({type(err).__name__}: {err}): it is "
            "truncated, corrupt or not a weights-only torch file; delete it or use another "
            "copy"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = (
            f"keys {sorted(map(str, payload))[:5]}" if isinstance(payload, dict) else type(payload).__name__
        )
        raise ValueError(
            f"{str(path)!r} is not a modlearn checkpoint (found {found}, expected a "
            f"{CHECKPOINT_FORMAT!r} written by fit or save_checkpoint): a plain state_dict "
            "loads with model.load_state_dict(torch.load(path))"
        )
    if payload.pop("sha256", None) != _digest(payload):
        raise ValueError(
            f"checkpoint {str(path)!r} is corrupt: its contents do not match the SHA-256 "
            "stored with them (changed bytes); delete it or use another copy"
        )
    return payload


def _apply_checkpoint(
    path: str | Path,
    saved: Mapping[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    history: History | None,
) -> None:
    _check_architecture(path, model, saved["model"])
    model.load_state_dict(saved["model"])
    if optimizer is not None and saved["optimizer"] is not None:
        optimizer.load_state_dict(saved["optimizer"])
    if history is not None:
        restored = History.from_dict(saved["history"])
        history.steps, history.epochs = restored.steps, restored.epochs


def _check_architecture(path: str | Path, model: nn.Module, saved: Mapping[str, torch.Tensor]) -> None:
    own = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    theirs = {key: tuple(value.shape) for key, value in saved.items()}
    problems = {
        "missing keys": [key for key in own if key not in theirs],
        "unexpected keys": [key for key in theirs if key not in own],
        "other shapes": [
            f"{key} {theirs[key]} (model: {own[key]})"
            for key in own
            if key in theirs and theirs[key] != own[key]
        ],
    }
    found = [f"{what} {names[:5]}" for what, names in problems.items() if names]
    if found:
        raise ValueError(
            f"checkpoint {str(path)!r} holds another architecture than this model: "
            f"{'; '.join(found)}; load it into the kind of model that wrote it"
        )


def _tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _digest(value: Any) -> str:
    """SHA-256 of a checkpoint's contents (tensors by dtype, shape and bytes; others by repr)."""
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(b"{")
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
        digest.update(b"}")
    elif isinstance(value, (list, tuple)):
        digest.update(b"[")
        for item in value:
            _feed(digest, item)
        digest.update(b"]")
    else:
        digest.update(f"{type(value).__name__} {value!r};".encode())


# --------------------------------------------------------------------------- resuming


def _run_settings(config: TrainConfig, train_size: int) -> dict[str, Any]:
    """What must match for a resume to continue the same run (`resume_strict`)."""
    return {**{name: getattr(config, name) for name in RESUME_FIELDS}, "train_size": train_size}


def _stateful_parts(objective: Objective, hooks: Sequence[Hook]) -> dict[str, Any]:
    """The objective and hooks with `state_dict()`/`load_state_dict()`, by name in the checkpoint."""
    candidates = {"objective": objective, **{f"hook{i}.{type(h).__name__}": h for i, h in enumerate(hooks)}}
    return {
        name: part
        for name, part in candidates.items()
        if callable(getattr(part, "state_dict", None)) and callable(getattr(part, "load_state_dict", None))
    }


def _open_resume(
    config: TrainConfig, model: nn.Module, run: Mapping[str, Any], parts: Mapping[str, Any]
) -> dict[str, Any]:
    """The checkpoint `resume=True` continues, checked against this run."""
    path = Path(config.checkpoint_path)
    if not path.exists():
        raise ValueError(
            f"resume=True but checkpoint_path={str(path)!r} does not exist: check the path, "
            "or pass resume=False to start a new run"
        )
    saved = _read_checkpoint(path)
    _check_architecture(path, model, saved["model"])
    differences = [
        f"{name}: checkpoint {saved['run'].get(name)!r}, now {value!r}"
        for name, value in run.items()
        if saved["run"].get(name) != value
    ]
    if set(saved["parts"]) != set(parts):
        differences.append(f"objective/hook states: checkpoint {sorted(saved['parts'])}, now {sorted(parts)}")
    if differences and config.resume_strict:
        raise ValueError(
            f"checkpoint {str(path)!r} was written by a different run: {'; '.join(differences)}. "
            "Resume with the same settings, pass resume_strict=False to resume anyway, or "
            "use a new checkpoint_path"
        )
    saved["parts"] = {name: saved["parts"][name] for name in parts if name in saved["parts"]}
    if saved["run"].get("optimizer") != config.optimizer:
        saved["optimizer"] = None
    return saved


def _restore_run(saved: Mapping[str, Any], state: TrainState, steps_per_epoch: int) -> float:
    """Load weights, optimizer, history and position; returns the seconds already spent in the
    current epoch, whose partial row is dropped (the resumed run completes that epoch).

    A non-strict resume trains on with this config's lr, weight_decay, momentum and betas, and with a
    fresh optimizer when the optimizer kind differs."""
    _apply_checkpoint(state.config.checkpoint_path, saved, state.model, state.optimizer, state.history)
    for name in ("lr", "weight_decay", "momentum", "betas"):
        if saved["run"].get(name) != getattr(state.config, name):
            for group in state.optimizer.param_groups:
                group[name] = getattr(state.config, name)
    state.step = int(saved["step"])
    state.epoch = state.step // steps_per_epoch
    rows = state.history.epochs
    if state.step % steps_per_epoch and rows and rows[-1]["epoch"] == state.epoch + 1:
        return rows.pop()["seconds"]
    return 0.0


def _rng_state(torch_state: torch.Tensor) -> dict[str, Any]:
    """Plain-tensor copies of the torch (CPU and CUDA), Python and NumPy generator states."""
    version, keys, gauss = random.getstate()
    _, np_keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch_state,
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": [version, torch.tensor(keys), gauss],
        "numpy": [torch.from_numpy(np_keys.astype(np.int64)), position, has_gauss, cached],
    }


def _set_rng_state(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys.tolist()), gauss))
    np_keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", np_keys.numpy().astype(np.uint32), position, has_gauss, cached))


# --------------------------------------------------------------------------- inputs


def _use_channels_last(config: TrainConfig, model: nn.Module, split: Split) -> bool:
    if config.channels_last is not None:
        return config.channels_last
    return split.x.ndim == 4 and any(isinstance(m, nn.Conv2d) for m in model.modules())


def _as_split(data: Split | Sequence[torch.Tensor]) -> Split:
    if isinstance(data, Split):
        return data
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return Split(torch.as_tensor(data[0]), torch.as_tensor(data[1]))
    raise ValueError(
        f"data of type {type(data).__name__} is not understood: pass a Dataset, a Split "
        "or a pair (x, y) of tensors"
    )


def _splits(data, val: Split | None) -> tuple[Split, Split | None]:
    if isinstance(data, Dataset):
        return data.train, val if val is not None else data.val
    return _as_split(data), val
