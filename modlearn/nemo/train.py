"""The entry point: `ModularConfig` (the papers' defaults), `NemoExtras` and `train_nemo`.

Part of `modlearn.nemo` (its package docstring names the papers).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import torch.nn as nn

from ..api import Run, Timer, block_model, check_hooks
from ..data import Dataset, Split
from ..env import seed_everything
from ..train import CrossEntropy, Hook, Objective, TrainConfig, fit
from ..validate import ConfigFields, check_type
from .losses import (
    CONTRASTIVE_LOSSES,
    MwTObjective,
    NeMoObjective,
)
from .masks import VIT_MASKS, masked_model

MODES = ("standard", "mwt", "nemo")


@dataclass
class ModularConfig:
    """Modularizing-while-training settings with the papers' defaults.

    `mode`: `"standard"` (cross-entropy only, the same masked model), `"mwt"` (Qi et al., ICSE 2024:
    alpha 0.5, beta 1.5) or `"nemo"` (Bi et al., arXiv 2508.11348: alpha 0.5, tau 0.3 are the
    trainers' defaults; the released run scripts use tau 0.2 with alpha 1.1-1.3 for CNNs and
    0.06-0.15 for ViTs).
    `loss` (NeMo only): `"released"` reproduces the released code (`released_contrastive_loss`: the
    0/1 class indicator multiplies the similarities before the exponential, the anchor counts
    itself); `"supcon"` sums over the other samples only (`supervised_contrastive_loss`).
    `mask_first_layer=False` leaves the first hidden Linear/conv (the first transformer block of a
    ViT) unmasked, as both reference codes do; `vit_masks="all"` masks every Linear of the other
    transformer blocks as NeMo does, `"qkv_fc1"` only q, k, v and the MLP's fc1.
    `threshold` (0.9) is the fraction of a class's samples on which a unit must be on to belong to it.
    """

    mode: str = "nemo"
    alpha: float = 0.5
    beta: float = 1.5
    tau: float = 0.3
    threshold: float = 0.9
    loss: str = "released"
    mask_first_layer: bool = False
    vit_masks: str = "all"

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        fields.choice("mode", MODES)
        fields.number("alpha", 0)
        fields.number("beta", 0)
        fields.number("tau", 0, low_open=True)
        fields.number("threshold", 0, 1)
        fields.choice("loss", tuple(CONTRASTIVE_LOSSES))
        fields.boolean("mask_first_layer")
        fields.choice("vit_masks", VIT_MASKS)

    def objective(self) -> Objective:
        """The training objective for `fit`."""
        if self.mode == "mwt":
            return MwTObjective(self.alpha, self.beta)
        if self.mode == "nemo":
            return NeMoObjective(self.alpha, self.tau, self.loss)
        return CrossEntropy()


@dataclass
class NemoExtras:
    """What `train_nemo` returns besides the masked, trained model: the `config` it trained with
    (`config.mode` says which objective; `config.threshold` is the one module extraction uses)."""

    config: ModularConfig


def train_nemo(
    model: nn.Module,
    data: Dataset | Split,
    config: ModularConfig | None = None,
    train: TrainConfig | None = None,
    *,
    hooks: Iterable[Hook] = (),
) -> Run[NemoExtras]:
    """Mask a copy of `model` and train it with `config.mode`'s objective (NeMo, MwT or standard)
    through `fit`; `run.model` is the masked, trained network, `model` is left unchanged.

    `model`: a `BlockModel` (MLP, CNN, TinyViT, ...) or a plain `nn.Sequential` of Linear/Conv2d
    layers and activations (`api.block_model` converts it); `x: (batch, *input)` -> `(batch, classes)`.
    `train` is the loop's config, passed to `fit` unchanged, as are `hooks`. The mask generators
    are initialized from `train.seed`, so a run repeats exactly.
    """
    owner = "train_nemo"
    hooks = check_hooks(hooks, owner)
    model = block_model(model, owner)
    check_type("config", config, ModularConfig, owner=owner, optional=True, hint="pass a ModularConfig(...)")
    check_type("train", train, TrainConfig, owner=owner, optional=True, hint="pass a TrainConfig(...)")
    config, train = config or ModularConfig(), train or TrainConfig()
    with Timer() as timer:
        if train.seed is not None:
            seed_everything(train.seed)
        masked = masked_model(model, config.mask_first_layer, config.vit_masks)
        history = fit(masked, data, train, objective=config.objective(), hooks=hooks)
    return Run(masked, history, NemoExtras(config), method="nemo", seconds=timer.seconds)
