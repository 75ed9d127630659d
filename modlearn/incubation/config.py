"""The method's numbers (`IncubationConfig`), the paper's loop settings (`paper_train`), and one phase's
`fit`: a fixed number of steps with the paper's cosine decay of the learning rate (`fit_steps`)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace

import torch.nn as nn

from ..data import Dataset, num_batches
from ..train import History, Hook, TrainConfig, TrainState, fit
from ..validate import ConfigFields


@dataclass
class IncubationConfig:
    """The method's settings of the three phases, after Ni et al. (ICCV 2023).

    Paper defaults kept: K = 4 stages, a cosine decay of the learning rate to `min_lr` = 1e-5 in
    every phase, gradient clipping 1.0 when fine-tuning, and meta : incubation : fine-tuning
    budgets in the ratio 300 : 100 : 100 (epochs on ImageNet there, optimizer steps here, so that
    full and low-data runs cost the same). `threads` is the torch thread count of every incubation,
    in worker processes and in the sequential path alike (so both give bit-identical weights);
    `workers` is the number of processes of `incubate_all(parallel=True)`. The loop's settings
    (AdamW, lr, batch size, seed, ...) are a `TrainConfig`, by default `paper_train()`.
    """

    stages: int = 4
    meta_steps: int = 3000
    incubation_steps: int = 1000
    finetune_steps: int = 1000
    min_lr: float = 1e-5
    finetune_grad_clip: float | None = 1.0
    workers: int = 2
    threads: int = 1

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        for name in ("stages", "meta_steps", "incubation_steps", "finetune_steps", "workers", "threads"):
            fields.integer(name, 1)
        fields.number("min_lr", 0)
        fields.number("finetune_grad_clip", 0, low_open=True, optional=True)

    def check_lr(self, train: TrainConfig) -> None:
        """Raise a `ValueError` unless `min_lr` lies below `train.lr`.

        The cosine schedule decays from one to the other."""
        if self.min_lr >= train.lr:
            raise ValueError(
                f"IncubationConfig(min_lr={self.min_lr}): min_lr must lie below the TrainConfig's "
                f"lr={train.lr}, where the cosine decay starts; lower min_lr or raise lr"
            )


def paper_train(**changes) -> TrainConfig:
    """The paper's loop settings: AdamW, lr 5e-4, weight decay 0.05, batch 128, seed 0, no progress
    bar; `changes` replace fields, e.g. `paper_train(lr=2e-3, batch_size=64)`."""
    defaults = dict(optimizer="adamw", lr=5e-4, weight_decay=0.05, batch_size=128, seed=0, progress=False)
    return TrainConfig(**{**defaults, **changes})


def fit_steps(
    model: nn.Module,
    data: Dataset,
    train: TrainConfig,
    steps: int,
    min_lr: float,
    desc: str,
    seed_offset: int = 0,
    grad_clip: float | None = None,
    hooks: Iterable[Hook] = (),
    params: Iterable[nn.Parameter] | None = None,
) -> History:
    """`fit` with `train` for exactly `steps` steps, the learning rate decaying (cosine) to `min_lr`.

    Of `train`, `epochs`, `max_steps` and `desc` are replaced to run `steps` steps; `seed` is
    shifted by `seed_offset` (each stage its own seed); `grad_clip`, when given, replaces `train.grad_clip`.
    `hooks` run after the schedule's own.
    """
    epochs = math.ceil(steps / num_batches(len(data.train), train.batch_size))
    seed = None if train.seed is None else train.seed + seed_offset
    config = replace(
        train,
        epochs=epochs,
        max_steps=steps,
        seed=seed,
        desc=desc,
        grad_clip=train.grad_clip if grad_clip is None else grad_clip,
    )
    return fit(model, data, config, hooks=[CosineDecay(min_lr), *hooks], params=params)


class CosineDecay(Hook):
    """Learning rate `min_lr + (lr - min_lr) (1 + cos(pi t / T)) / 2` after step t of T (the paper's)."""

    def __init__(self, min_lr: float) -> None:
        self.min_lr = min_lr

    def on_fit_start(self, state: TrainState) -> None:
        self.base = [group["lr"] for group in state.optimizer.param_groups]

    def state_dict(self) -> dict:
        """The base learning rates (a resumed optimizer holds decayed ones)."""
        return {"base": list(self.base)}

    def load_state_dict(self, state: dict) -> None:
        self.base = list(state["base"])

    def on_step_end(self, state: TrainState) -> None:
        progress = min(1.0, state.step / state.total_steps)
        for group, base in zip(state.optimizer.param_groups, self.base, strict=True):
            group["lr"] = self.min_lr + 0.5 * (base - self.min_lr) * (1 + math.cos(math.pi * progress))
