"""The one training loop of the series: `fit`, `evaluate`, `History`, checkpoints.

Methods plug in through an *objective* `objective(model, batch) -> (loss, metrics)` and *hooks*
called at step and epoch ends; none of them writes a loop of its own.
Introduced in `tutorials/01_e2e_backprop.ipynb`.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .data import Dataset, Split, iterate_batches, num_batches
from .env import resolve_device, seed_everything
from .validate import ConfigFields, check_device, check_evaluate_inputs, check_fit_inputs

Batch = tuple[torch.Tensor, torch.Tensor]
Metrics = dict[str, torch.Tensor]
OPTIMIZERS = ("adam", "adamw", "sgd")


# --------------------------------------------------------------------------- objectives

class Objective:
    """A training loss: `objective(model, batch) -> (loss, metrics)`.

    `task` is what validation reports (regularizers excluded). An objective that runs
    `backward()` itself (local training does, block by block) sets `handles_backward = True`.
    """

    handles_backward: bool = False

    @property
    def task(self) -> "Objective":
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

    def __init__(self, task: Objective, penalty: Callable[[nn.Module], torch.Tensor],
                 weight: float, name: str = "penalty") -> None:
        if weight < 0:
            raise ValueError(f"weight={weight} must be >= 0")
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
    """Settings of `fit`. Defaults: Adam, lr 1e-3, batch 128, bf16 autocast on CUDA.

    `channels_last=None` stores images and conv weights channels-last when the model has a
    `Conv2d` (faster convolutions on CPU and GPU; the same function); `False` keeps NCHW.
    """

    epochs: int = 5
    batch_size: int = 128
    lr: float = 1e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
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

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        for name in ("epochs", "batch_size", "eval_batch_size", "checkpoint_every"):
            fields.integer(name, 1)
        fields.integer("max_steps", 1, optional=True)
        fields.integer("seed", 0, optional=True)
        fields.number("lr", 0, low_open=True)
        fields.number("weight_decay", 0)
        fields.number("momentum", 0, 1, high_open=True)
        fields.number("grad_clip", 0, low_open=True, optional=True)
        fields.choice("optimizer", OPTIMIZERS)
        for name in ("amp", "compile", "progress", "resume"):
            fields.boolean(name)
        fields.boolean("channels_last", optional=True)
        check_device("device", self.device, owner="TrainConfig")
        if self.resume and not self.checkpoint_path:
            raise ValueError("TrainConfig(resume=True): resume needs a checkpoint_path to resume from; "
                             "pass checkpoint_path='run.pt' or resume=False")


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
        raise KeyError(f"{key!r} was never recorded; epoch keys: {sorted(self.epochs[-1]) if self.epochs else []}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> "History":
        return cls(steps={k: list(v) for k, v in state["steps"].items()},
                   epochs=[dict(r) for r in state["epochs"]], interrupted=bool(state["interrupted"]))

    def plot(self, title: str | None = None):
        """Loss and accuracy curves (steps smoothed, epochs as markers). Returns the figure."""
        from .viz import plot_history

        return plot_history(self, title=title)


@dataclass
class TrainState:
    """What hooks see: the model, optimizer, counters and the latest step's metrics."""

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


class Hook:
    """Called by `fit`; override what you need. Set `state.stop = True` to end training early."""

    def on_fit_start(self, state: TrainState) -> None: ...

    def on_step_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState) -> None: ...

    def on_fit_end(self, state: TrainState) -> None: ...


class _CallableHook(Hook):
    def __init__(self, fn: Callable[[TrainState], None]) -> None:
        self.fn = fn

    def on_step_end(self, state: TrainState) -> None:
        self.fn(state)


# --------------------------------------------------------------------------- the loop

def fit(model: nn.Module, data: Dataset | Split | Sequence[torch.Tensor],
        config: TrainConfig | None = None, objective: Objective | None = None,
        hooks: Iterable[Hook | Callable[[TrainState], None]] = (),
        params: Iterable[torch.nn.Parameter] | None = None, val: Split | None = None) -> History:
    """Train `model` in place and return its `History`.

    - `data`: a `Dataset` (trains on `.train`, validates on `.val`), a `Split`, or `(x, y)`.
    - `objective`: default cross-entropy; methods pass their own (see `Objective`).
    - `hooks`: `Hook` objects or plain callables run after every step.
    - `params`: the parameters to optimize (default: all that require grad).

    The data moves to the device once; batches are on-device slices. On CUDA the forward pass
    runs under bf16 autocast. Ctrl-C (KeyboardInterrupt) stops training and returns what was
    done so far, with the model as trained; a checkpoint is written when `checkpoint_path` is set.
    """
    config = config or TrainConfig()
    objective = objective or CrossEntropy()
    hooks = [h if isinstance(h, Hook) else _CallableHook(h) for h in hooks]
    train_split, val_split = _splits(data, val)
    check_fit_inputs(model, config, objective, train_split, val_split)
    device = resolve_device(config.device)
    if config.seed is not None:
        seed_everything(config.seed)
    model.to(device)
    train_split, val_split = train_split.to(device), (val_split.to(device) if val_split else None)
    if _use_channels_last(config, model, train_split):
        model.to(memory_format=torch.channels_last)
        train_split = Split(train_split.x.contiguous(memory_format=torch.channels_last), train_split.y)
    trainable = [p for p in (params if params is not None else model.parameters()) if p.requires_grad]
    if not trainable:
        raise ValueError("no parameter to train: every parameter has requires_grad=False "
                         "(pass `params=` or unfreeze the model)")
    optimizer = make_optimizer(trainable, config)
    history = History()
    steps_per_epoch = num_batches(len(train_split), config.batch_size)
    total = config.epochs * steps_per_epoch
    total = min(total, config.max_steps) if config.max_steps else total
    state = TrainState(model, optimizer, config, history, device, total_steps=total)
    if config.resume and Path(config.checkpoint_path).exists():
        state.epoch, state.step = load_checkpoint(config.checkpoint_path, model, optimizer, history)
    forward_model = torch.compile(model) if config.compile else model
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if config.amp and device.type == "cuda"
                else contextlib.nullcontext())
    bar = tqdm(total=total, initial=state.step, desc=config.desc, disable=not config.progress,
               leave=False, dynamic_ncols=True)
    for hook in hooks:
        hook.on_fit_start(state)
    try:
        while state.epoch < config.epochs and state.step < total and not state.stop:
            _run_epoch(state, forward_model, train_split, val_split, objective, trainable, hooks,
                       autocast, bar)
            if config.checkpoint_path and state.epoch % config.checkpoint_every == 0:
                save_checkpoint(config.checkpoint_path, model, optimizer, history, state.epoch, state.step)
    except KeyboardInterrupt:
        history.interrupted = True
        print(f"Interrupted at step {state.step}/{total}: returning the history and the model as trained.")
        if config.checkpoint_path:
            save_checkpoint(config.checkpoint_path, model, optimizer, history, state.epoch, state.step)
    finally:
        bar.close()
    for hook in hooks:
        hook.on_fit_end(state)
    return history


def _run_epoch(state: TrainState, forward_model: nn.Module, train: Split, val: Split | None,
               objective: Objective, trainable: list[torch.nn.Parameter], hooks: list[Hook],
               autocast, bar) -> None:
    """One pass over the training split; appends its steps and epoch summary to the history."""
    config, model, optimizer = state.config, state.model, state.optimizer
    generator = torch.Generator().manual_seed((config.seed or 0) * 100_003 + state.epoch)
    model.train()
    start, logged = time.perf_counter(), []
    try:
        for batch in iterate_batches(train.x, train.y, config.batch_size, generator=generator):
            optimizer.zero_grad(set_to_none=True)
            with autocast:
                loss, metrics = objective(forward_model, batch)
            if not objective.handles_backward:
                loss.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(trainable, config.grad_clip)
            optimizer.step()
            state.step += 1
            state.metrics = {"loss": loss.detach(), **metrics}
            logged.append(state.metrics)
            bar.update(1)
            for hook in hooks:
                hook.on_step_end(state)
            if state.step >= state.total_steps or state.stop:
                break
    finally:
        _log_epoch(state, logged, val, objective, time.perf_counter() - start, bar)
    state.epoch += 1
    for hook in hooks:
        hook.on_epoch_end(state)


def _log_epoch(state: TrainState, logged: list[Metrics], val: Split | None, objective: Objective,
               seconds: float, bar) -> None:
    if not logged:
        return
    columns = {key: torch.stack([m[key].float() for m in logged]).tolist() for key in logged[0]}
    state.history.log_steps(columns)
    row = {"epoch": state.epoch + 1, "step": state.step, "seconds": seconds}
    row.update({f"train_{k}": sum(v) / len(v) for k, v in columns.items()})
    if val is not None and len(val):
        row.update({f"val_{k}": v for k, v in evaluate(state.model, val, objective,
                                                        state.config.eval_batch_size).items()})
    state.history.epochs.append(row)
    bar.set_postfix({k: f"{v:.3g}" for k, v in row.items() if k.startswith(("train_loss", "val_"))})


@torch.no_grad()
def evaluate(model: nn.Module, data: Dataset | Split | Sequence[torch.Tensor],
             objective: Objective | None = None, batch_size: int = 2048) -> dict[str, float]:
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
    return torch.cat([model(x[i:i + batch_size].to(device)).float().cpu()
                      for i in range(0, len(x), batch_size)])


def make_optimizer(params: Iterable, config: TrainConfig) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD (with momentum) as `config` says."""
    params = list(params)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


# --------------------------------------------------------------------------- checkpoints

def save_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None,
                    history: History, epoch: int, step: int) -> None:
    """Write weights, optimizer state, history and counters; loadable with `weights_only=True`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "history": history.to_dict(), "epoch": epoch, "step": step,
             "optimizer": optimizer.state_dict() if optimizer is not None else None}
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def load_checkpoint(path: str | Path, model: nn.Module, optimizer: torch.optim.Optimizer | None = None,
                    history: History | None = None) -> tuple[int, int]:
    """Restore a checkpoint into `model` (and `optimizer`, `history`); returns `(epoch, step)`."""
    state = torch.load(path, map_location=next(model.parameters()).device, weights_only=True)
    model.load_state_dict(state["model"])
    if optimizer is not None and state["optimizer"] is not None:
        optimizer.load_state_dict(state["optimizer"])
    if history is not None:
        restored = History.from_dict(state["history"])
        history.steps, history.epochs = restored.steps, restored.epochs
    return int(state["epoch"]), int(state["step"])


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
    raise ValueError(f"data of type {type(data).__name__} is not understood: pass a Dataset, a Split "
                     "or a pair (x, y) of tensors")


def _splits(data, val: Split | None) -> tuple[Split, Split | None]:
    if isinstance(data, Dataset):
        return data.train, val if val is not None else data.val
    return _as_split(data), val
