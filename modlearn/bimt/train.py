"""BIMT's entry point: `train_bimt` (one `fit` with the connection cost, its schedule and the swaps),
and the paper's ablation over the training modes (`run_ablation`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import torch

from ..api import Run, Timer, check_hooks, trainable_copy
from ..data import Dataset, num_batches
from ..train import Hook, Objective, Regularized, TrainConfig, TrainState, fit
from ..validate import check_type
from .config import MODES, BIMTConfig, paper_train
from .metrics import bimt_metrics
from .model import BioMLP, bio_mlp
from .objective import LambdaSchedule, bimt_objective
from .swaps import SwapHook


@dataclass
class BIMTExtras:
    """What `train_bimt` found besides the trained `BioMLP`.

    - `config`: the `BIMTConfig` the run trained with.
    - `swaps`: how many neuron swaps the swap rounds made (0 in the modes without swaps).
    """

    config: BIMTConfig
    swaps: int = 0


def bimt_hooks(objective: Objective, config: BIMTConfig) -> list[Hook]:
    """The lambda schedule (regularized modes) and the swap hook (`l1_swap`, `bimt`)."""
    hooks: list[Hook] = []
    if isinstance(objective, Regularized):
        hooks.append(LambdaSchedule(objective, config.lam, config.lam_factors, config.lam_boundaries))
    if config.mode in ("l1_swap", "bimt"):
        hooks.append(
            SwapHook(
                config.swap_every, config.top_k, config.weight_factor, config.reduction, config.penalize_last
            )
        )
    return hooks


def train_bimt(
    model: BioMLP,
    data: Dataset,
    config: BIMTConfig | None = None,
    train: TrainConfig | None = None,
    *,
    hooks: Iterable[Hook | Callable[[TrainState], None]] = (),
) -> Run[BIMTExtras]:
    """Train a copy of `model` (a `BioMLP`; convert an MLP with `bimt.from_mlp`) with the paper's
    ablation `config.mode`, through one `fit`; `model` itself is left as it was.

    Modes: `none`, `l1` (lambda |W| l0), `l1_local` (distance-weighted), `l1_swap` (L1 + swaps
    chosen by wire length), `bimt` (all). `train` (default `paper_train(data)`) is the loop's config;
    `train_bimt` replaces its `max_steps` by `config.steps`, its `epochs` by the epochs those steps
    need, and its `desc`. Validation runs per epoch only when an epoch has several batches
    (full-batch toys validate at the end). `hooks` go to the `fit` after BIMT's own (schedule, swaps).

    Returns a `Run`: `run.model` the trained `BioMLP` (`x: (batch, widths[0]) -> (batch, widths[-1])`),
    `run.history` its loop, `run.extras` a `BIMTExtras` (`config`, `swaps`).
    """
    hooks = check_hooks(hooks, "train_bimt")
    bio_mlp(model, "train_bimt")
    check_type("data", data, Dataset, owner="train_bimt", hint="pass a Dataset, e.g. data.symbolic_task(...)")
    check_type("config", config, BIMTConfig, owner="train_bimt", optional=True, hint="pass a BIMTConfig(...)")
    check_type(
        "train",
        train,
        TrainConfig,
        owner="train_bimt",
        optional=True,
        hint="pass a TrainConfig(...), e.g. bimt.paper_train(data)",
    )
    config, train = config or BIMTConfig(), train or paper_train(data)
    trained = trainable_copy(model)
    objective = bimt_objective(trained, data, config)
    own = bimt_hooks(objective, config)
    per_epoch = num_batches(len(data.train), train.batch_size)
    train = replace(
        train, epochs=math.ceil(config.steps / per_epoch), max_steps=config.steps, desc=f"BIMT {config.mode}"
    )
    with Timer() as timer:
        history = fit(trained, data if per_epoch > 1 else data.train, train, objective, hooks=[*own, *hooks])
    swaps = sum(hook.num_swaps for hook in own if isinstance(hook, SwapHook))
    return Run(trained, history, BIMTExtras(config, swaps), method="bimt", seconds=timer.seconds)


def run_ablation(
    make_model: Callable[[], BioMLP],
    data: Dataset,
    modes: Sequence[str] = MODES,
    config: BIMTConfig | None = None,
    train: TrainConfig | None = None,
    groups: Sequence[Sequence[int]] | None = None,
    hooks: dict[str, Sequence[Hook]] | None = None,
) -> dict[str, tuple[BioMLP, dict[str, float]]]:
    """Train a fresh `make_model()` with each mode (same `config`, `train` and seed).

    Returns `{mode: (trained model, metrics)}`: the metrics are `bimt_metrics` plus the training
    speed `steps_per_s`. `hooks[mode]` are extra hooks for that mode's run (e.g. `Snapshots` for a
    training movie).
    """
    config, train = config or BIMTConfig(), train or paper_train(data)
    results = {}
    for mode in modes:
        if train.seed is not None:
            torch.manual_seed(train.seed)
        run = train_bimt(
            make_model(), data, replace(config, mode=mode), train, hooks=(hooks or {}).get(mode, ())
        )
        steps_per_s = run.history.num_steps / run.seconds
        results[mode] = (run.model, {**bimt_metrics(run.model, data, groups), "steps_per_s": steps_per_s})
    return results
