"""What a run records and what hooks see: `History`, `TrainState`, `Hook`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from . import distributed
from .config import TrainConfig
from .objectives import Metrics

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class History:
    """What `fit` measured: per-step columns (`steps["loss"]`, ...) and one dict per epoch."""

    steps: dict[str, list[float]] = field(default_factory=dict)
    epochs: list[dict[str, float]] = field(default_factory=list)
    interrupted: bool = False

    def log_steps(self, columns: dict[str, list[float]]) -> None:
        """Append per-step values: `columns[key]` holds one float per step."""
        for key, values in columns.items():
            self.steps.setdefault(key, []).extend(values)

    @property
    def num_steps(self) -> int:
        """The optimizer steps recorded (the length of the `loss` column)."""
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
        """Plain lists and dicts (what a checkpoint stores)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> History:
        """The `History` that `to_dict` wrote."""
        return cls(
            steps={k: list(v) for k, v in state["steps"].items()},
            epochs=[dict(r) for r in state["epochs"]],
            interrupted=bool(state["interrupted"]),
        )

    def plot(self, title: str | None = None) -> Figure:
        """Loss and accuracy curves (steps smoothed, epochs as markers). Returns the figure."""
        from ..viz import plot_history

        return plot_history(self, title=title)


@dataclass
class TrainState:
    """What hooks see: the model, optimizer, counters and the latest step's metrics; `ranks` when
    several processes train together (`torchrun`, see `modlearn.train.distributed`), else None."""

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
