"""The one training loop of the series: `fit`, and `evaluate` / `predict` to use what it trained.

Methods plug in through an *objective* `objective(model, batch) -> (loss, metrics)` and *hooks*
called at step and epoch ends; none of them writes a loop of its own.
Introduced in `tutorials/01_e2e_backprop.ipynb`.
"""

from __future__ import annotations

import contextlib
import itertools
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn as nn

from ..data import Dataset, Split, iterate_batches, num_batches
from ..env import resolve_device, seed_everything
from ..validate import check_evaluate_inputs, check_fit_inputs
from . import distributed
from .checkpoint import save_checkpoint
from .config import TrainConfig
from .objectives import CrossEntropy, Metrics, Objective
from .progress import progress_bar, show_progress
from .resume import open_resume, restore_run, rng_state, run_settings, set_rng_state, stateful_parts
from .state import History, Hook, TrainState, as_hook


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

    - `data`: a `Dataset` (trains on `.train`, validates on `.val`), a `Split`, or `(x, y)` with
      `x: (n, *input)` and `y: (n,)` class indices (or targets of the model output's shape).
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
    Launched with `torchrun`, it trains data-parallel across the ranks (`modlearn.train.distributed`):
    each global batch is shared out, gradients and step metrics are averaged, rank 0 writes the
    checkpoint (which resumes with another number of ranks, or in one process).
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
    parts = stateful_parts(objective, hooks)
    run = run_settings(config, len(train_split))
    saved = open_resume(config, model, run, parts) if config.resume else None
    carried = restore_run(saved, state, steps_per_epoch) if saved is not None else 0.0
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
        set_rng_state(saved["rng"])
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
                "rng": rng_state(log.rng),
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
    """Mean loss and metrics of `objective.task` (default cross-entropy) over `data`, e.g.
    `{"loss": 0.31, "acc": 0.91}`.

    `data`: a `Dataset` (evaluated on its test split), a `Split` or `(x, y)` with `x: (n, *input)`.
    The model is left in eval mode.
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
    """Model outputs for `x: (n, *input)`, computed on the model's device in batches: `(n, *output)`
    float32 on the CPU (logits `(n, classes)` for a classifier). The model is left in eval mode."""
    device = next(model.parameters()).device
    model.eval()
    return torch.cat(
        [model(x[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(x), batch_size)]
    )


def make_optimizer(params: Iterable[nn.Parameter], config: TrainConfig) -> torch.optim.Optimizer:
    """Adam or AdamW (with `config.betas`), or SGD (with momentum), as `config` says."""
    params = list(params)
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, betas=config.betas, weight_decay=config.weight_decay)
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


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
