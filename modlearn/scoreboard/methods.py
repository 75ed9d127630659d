"""The scoreboard's methods: one architecture, each method's public `train_<method>` on it, the same
number of optimizer steps.

An entry of `SCOREBOARD_METHODS` is `train(model, data, train) -> Run`: it trains (a copy of) the
seeded `model` with `train` (a `TrainConfig` of `max_steps` steps) and returns the method's `Run`,
whose `run.model` the metrics read (an MLP-like `BlockModel`, a masked MLP, or Forward-Forward's
goodness classifier). `ACTIVATION_PROBES[name](run, data, train)` gives the activation bytes one of
its training steps holds at its peak; a method without a probe is measured as a plain cross-entropy
step of `run.model` (`plain_step_bytes`).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn as nn

from .. import bimt
from ..api import Run, Timer, trainable_copy
from ..cluster import PAPER_LAM, ClusterabilityLoss, ClusterConfig, train_cluster
from ..data import Dataset
from ..env import seed_everything
from ..incubation import IncubationConfig, StagedModel, train_incubation
from ..local import LocalConfig, activation_bytes, step_activation_bytes, train_local
from ..models import MLP
from ..nemo import ModularConfig, train_nemo
from ..train import CrossEntropy, Objective, TrainConfig, fit
from .reading import weight_layers

MODULES = 4
"""Modules of the scoreboard MLP: DGL's and greedy's modules, Deep Incubation's stages, the k of
clusterability and of the cross-cluster cut."""
BIMT_SETTINGS = dict(lam=3e-4, weight_factor=2.0, swap_every=200, top_k=10, penalize_last=False)
"""BIMT and its L1 ablation on a classifier as notebook 07 trains them (A = 2, swaps every 200 steps,
top 10, the head not penalized), lambda scaled down for this MLP's 5x more weights (sum cost)."""
FF_LOOP = dict(lr=0.03, batch_size=64)
"""Forward-Forward's loop settings (the reference code's, as notebook 02)."""

ScoreboardMethod = Callable[[nn.Module, Dataset, TrainConfig], Run]
"""`train(model, data, train) -> Run`: one method of the scoreboard."""
ActivationProbe = Callable[[Run, Dataset, TrainConfig], int]
"""`probe(run, data, train) -> bytes`: the activation peak of one training step of the method."""


# --------------------------------------------------------------------------- the model and the budget


def scoreboard_mlp(data: Dataset, width: int = 64, depth: int = MODULES + 1) -> MLP:
    """The scoreboard's architecture for `data`: an MLP of `depth` hidden blocks of `width`, which
    cuts into `MODULES` modules: greedy and DGL split the blocks as evenly as they go (0 | 1 | 2-3 |
    4 by default), Deep Incubation's stage 0 also owns the input block (0-1 | 2 | 3 | 4 + head), as
    the paper's owns the patch embedding. Maps `(batch, *data.input_shape) -> (batch, classes)`."""
    return MLP(data.input_shape, hidden=(width,) * depth, num_classes=data.num_classes)


def step_budget(steps: int, seed: int, lr: float = 3e-3, batch_size: int = 128) -> TrainConfig:
    """The loop's config shared by every method: `steps` optimizer steps (Adam), no progress bar."""
    return TrainConfig(epochs=None, max_steps=steps, seed=seed, lr=lr, batch_size=batch_size, progress=False)


def fresh_model(model_factory: Callable[[], nn.Module], seed: int) -> nn.Module:
    """`model_factory()` after seeding, so every method starts from the same weights for a seed."""
    seed_everything(seed)
    return model_factory()


def first_batch(data: Dataset, train: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `train.batch_size` training samples, on the CPU (the memory probe's batch):
    `x: (batch, ...)`, `y: (batch,)`."""
    return data.train.x[: train.batch_size].cpu(), data.train.y[: train.batch_size].cpu()


def step_memory(model: nn.Module, objective: Objective, data: Dataset, train: TrainConfig) -> int:
    """Peak activation bytes of one training step of `objective` on a CPU copy of `model`."""
    return step_activation_bytes(copy.deepcopy(model).cpu(), objective, first_batch(data, train))


def plain_step_bytes(run: Run, data: Dataset, train: TrainConfig) -> int:
    """The default probe: one cross-entropy step of `run.model`."""
    return step_memory(run.model, CrossEntropy(), data, train)


# --------------------------------------------------------------------------- methods


def train_plain_e2e(model: nn.Module, data: Dataset, train: TrainConfig) -> Run[None]:
    """The baseline: the plain loop (`fit`) on a copy of `model`, one global backward pass per step."""
    trained = trainable_copy(model)
    with Timer() as timer:
        history = fit(trained, data, train)
    return Run(trained, history, None, method="e2e", seconds=timer.seconds)


def local_method(mode: str) -> ScoreboardMethod:
    """`local.train_local` with `mode` and `MODULES` modules. Greedy spends `max_steps / MODULES`
    per module, so every method takes the same number of optimizer steps; Forward-Forward trains
    with `FF_LOOP`. `run.model` is the trained MLP (Forward-Forward: its goodness classifier)."""

    def train(model: nn.Module, data: Dataset, config: TrainConfig) -> Run:
        local = LocalConfig(mode=mode, num_modules=None if mode == "ff" else MODULES)
        per_module = max(1, config.max_steps // MODULES) if mode == "greedy" else config.max_steps
        return train_local(
            model, data, local, replace(config, max_steps=per_module, **(FF_LOOP if mode == "ff" else {}))
        )

    return train


def local_bytes(run: Run, data: Dataset, train: TrainConfig) -> int:
    """`local.activation_bytes` of the run's mode on its trained blocks."""
    blocks = copy.deepcopy(run.extras.block_model).cpu()
    return activation_bytes(blocks, first_batch(data, train), run.extras.config, data.num_classes)


def meta_model(target: MLP) -> StagedModel:
    """Deep Incubation's small meta model for the scoreboard MLP `target`: the target's `MODULES`
    stage interfaces with the fewest layers, the input layer alone in stage 0 and the head alone in
    the last stage (the target's first and last stages hold one hidden block more)."""
    width, stages = target.widths[1], []
    for s in range(MODULES):
        layers: list[nn.Module] = [nn.Flatten(), nn.Linear(target.widths[0], width)] if s == 0 else []
        if 0 < s < MODULES - 1:
            layers.append(nn.Linear(width, width))
        if s < MODULES - 1:
            layers.append(nn.ReLU())
        else:
            layers.append(nn.Linear(width, target.widths[-1]))
        stages.append(nn.Sequential(*layers))
    return StagedModel(stages)


def train_deep_incubation(model: nn.Module, data: Dataset, config: TrainConfig) -> Run:
    """`incubation.train_incubation` of the MLP, cut into `MODULES` stages, with `meta_model`, in this
    process. The paper's phase ratio 300 : 100 (each of the 4 incubations) : 100 (fine-tune)
    splits `max_steps`, so the method takes as many optimizer steps as the others."""
    unit = max(1, config.max_steps // 8)
    phases = IncubationConfig(
        stages=MODULES, meta_steps=3 * unit, incubation_steps=unit, finetune_steps=unit, workers=1
    )
    return train_incubation(model, data, phases, config, meta=meta_model(model), parallel=False)


def incubation_bytes(run: Run, data: Dataset, train: TrainConfig) -> int:
    """The largest activation peak of Deep Incubation's phases (fine-tuning is end to end)."""
    incubation = run.extras.incubation
    models = [incubation.meta, *(incubation.hybrid(i) for i in range(MODULES)), run.model]
    return max(step_memory(m, CrossEntropy(), data, train) for m in models)


def train_clusterability(model: nn.Module, data: Dataset, config: TrainConfig) -> Run:
    """E2E for half the steps, then the clusterability loss (`cluster.train_cluster`, k = `MODULES`,
    the paper's `PAPER_LAM` = 40) with co-clusters fitted to those weights for the other half (as the
    paper fits them to a trained model). `run.histories` holds the E2E phase first. The loss's
    warning that the task loss rose is silenced: from a trained start it rises by design here."""
    half = replace(config, max_steps=max(1, config.max_steps // 2))
    e2e = train_plain_e2e(model, data, half)
    layers = tuple(weight_layers(e2e.model))
    settings = ClusterConfig(k=MODULES, layers=layers, seed=config.seed, lam=PAPER_LAM)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"train_cluster\(lam=")
        run = train_cluster(e2e.model, data, settings, half)
    histories = {"e2e": e2e.history, **{f"cluster {k}": h for k, h in run.histories.items()}}
    return replace(run, histories=histories, seconds=e2e.seconds + run.seconds)


def cluster_bytes(run: Run, data: Dataset, train: TrainConfig) -> int:
    """One step of the task loss plus the clusterability loss on the run's co-clusters."""
    return step_memory(run.model, ClusterabilityLoss(run.extras.clusters), data, train)


def _bimt_settings(mode: str, steps: int) -> bimt.BIMTConfig:
    return bimt.BIMTConfig(mode=mode, steps=steps, **BIMT_SETTINGS)


def bimt_method(mode: str) -> ScoreboardMethod:
    """`bimt.train_bimt` with `mode` (`"bimt"`, or its `"l1"` ablation) on a 1-D `BioMLP` holding
    the MLP's initial weights (`bimt.from_mlp`); `run.model` is folded back into an MLP
    (`bimt.to_mlp`), which computes what the trained `BioMLP` computes."""

    def train(model: nn.Module, data: Dataset, config: TrainConfig) -> Run:
        bio = bimt.from_mlp(model)
        run = bimt.train_bimt(bio, data, _bimt_settings(mode, config.max_steps), config)
        return replace(run, model=bimt.to_mlp(run.model))

    return train


def bimt_bytes(mode: str) -> ActivationProbe:
    """One step of BIMT's objective (`bimt.bimt_objective`) on the run's network as a `BioMLP`."""

    def probe(run: Run, data: Dataset, train: TrainConfig) -> int:
        bio = bimt.from_mlp(run.model)
        return step_memory(
            bio, bimt.bimt_objective(bio, data, _bimt_settings(mode, train.max_steps)), data, train
        )

    return probe


def modular_method(mode: str) -> ScoreboardMethod:
    """`nemo.train_nemo` with `mode` (`"mwt"` or `"nemo"`, the papers' defaults): `run.model` is the
    masked model."""

    def train(model: nn.Module, data: Dataset, config: TrainConfig) -> Run:
        return train_nemo(model, data, ModularConfig(mode=mode), config)

    return train


def modular_bytes(mode: str) -> ActivationProbe:
    """One step of MwT's or NeMo's objective on the masked model."""

    def probe(run: Run, data: Dataset, train: TrainConfig) -> int:
        return step_memory(run.model, ModularConfig(mode=mode).objective(), data, train)

    return probe


SCOREBOARD_METHODS: dict[str, ScoreboardMethod] = {
    "e2e": train_plain_e2e,
    "greedy": local_method("greedy"),
    "dgl": local_method("dgl"),
    "ff": local_method("ff"),
    "incubation": train_deep_incubation,
    "cluster": train_clusterability,
    "l1": bimt_method("l1"),
    "bimt": bimt_method("bimt"),
    "mwt": modular_method("mwt"),
    "nemo": modular_method("nemo"),
}
ACTIVATION_PROBES: dict[str, ActivationProbe] = {
    "greedy": local_bytes,
    "dgl": local_bytes,
    "ff": local_bytes,
    "incubation": incubation_bytes,
    "cluster": cluster_bytes,
    "l1": bimt_bytes("l1"),
    "bimt": bimt_bytes("bimt"),
    "mwt": modular_bytes("mwt"),
    "nemo": modular_bytes("nemo"),
}
"""The methods whose training step is not one cross-entropy step of `run.model`."""
NAMES = {
    "e2e": "E2E",
    "greedy": "greedy",
    "dgl": "DGL",
    "ff": "Forward-Forward",
    "incubation": "Deep Incubation",
    "cluster": "E2E + clusterability",
    "l1": "L1",
    "bimt": "BIMT",
    "mwt": "MwT",
    "nemo": "NeMo",
}
