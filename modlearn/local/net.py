"""A model cut into K modules along its blocks, each module with an auxiliary classifier head."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from ..api import block_model
from ..data import Dataset
from ..models import split_blocks
from .config import HEADS, LocalConfig


def make_aux_head(
    feature_shape: Sequence[int], num_classes: int, kind: str = "linear", hidden: int = 256
) -> nn.Module:
    """An auxiliary classifier `(batch, *feature_shape) -> (batch, num_classes)` for features of one
    sample shaped `(d,)` or `(C, H, W)`.

    `linear`: (global average pool, then) a Linear. `mlp`: pool to 2x2, flatten, two hidden
    ReLU layers of `hidden`, Linear (DGL's "mlp" head). `conv`: Conv3x3-BN-ReLU, pool, Linear (CNN only).
    """
    if kind not in HEADS:
        raise ValueError(f"unknown aux_head {kind!r}: choose one of {HEADS}")
    if len(feature_shape) not in (1, 3):
        raise ValueError(
            f"feature shape {tuple(feature_shape)} is neither (d,) nor (C, H, W): aux heads are "
            "built for MLP and CNN blocks"
        )
    channels = feature_shape[0]
    image = len(feature_shape) == 3
    if kind == "conv" and not image:
        raise ValueError("aux_head='conv' needs image features (a CNN): use 'linear' or 'mlp' for an MLP")
    if kind == "linear":
        pool = [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if image else []
        return nn.Sequential(*pool, nn.Linear(channels, num_classes))
    if kind == "mlp":
        pool = [nn.AdaptiveAvgPool2d(2), nn.Flatten()] if image else []
        width = channels * 4 if image else channels
        return nn.Sequential(
            *pool,
            nn.Linear(width, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, num_classes),
    )


class LocalNet(nn.Module):
    """A model cut into K modules (`stages`), each with an auxiliary head (`heads`).

    `model` is a `BlockModel` or a plain `nn.Sequential` (converted by `api.block_model`, sharing its
    parameters). The stages share the model's blocks and `heads[-1]` is the model's own head, so
    training a `LocalNet` trains the model, and `LocalNet(x) == model(x)`: `(batch, ...) -> (batch, classes)`.
    The auxiliary heads are sized by a trial forward pass of `input_shape` (one sample's shape).
    """

    def __init__(
        self,
        model: nn.Module,
        input_shape: Sequence[int],
        num_classes: int,
        num_modules: int | None = None,
        aux_head: str = "linear",
        aux_hidden: int = 256,
    ) -> None:
        super().__init__()
        self.model = block_model(model, "LocalNet")
        self.bounds = split_blocks(len(self.model.blocks), num_modules)
        self.stages = nn.ModuleList(nn.Sequential(*self.model.blocks[a:b]) for a, b in self.bounds)
        shapes = stage_output_shapes(self.stages, input_shape)
        heads = [make_aux_head(s, num_classes, aux_head, aux_hidden) for s in shapes[:-1]]
        device = next(self.model.parameters()).device
        self.heads = nn.ModuleList([*(head.to(device) for head in heads), self.model.head])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x: (batch, ...)` -> `(batch, classes)`, the model's own output."""
        return self.model(x)

    def prefix(self, k: int) -> nn.Sequential:
        """The first `k` stages as one module (empty for `k = 0`)."""
        return nn.Sequential(*self.stages[:k])


def local_net(model: nn.Module, data: Dataset, config: LocalConfig) -> LocalNet:
    """`model` cut into `config.num_modules` modules with `config.aux_head` heads for `data`."""
    return LocalNet(
        model, data.input_shape, data.num_classes, config.num_modules, config.aux_head, config.aux_hidden
    )


@torch.no_grad()
def stage_output_shapes(stages: Sequence[nn.Module], input_shape: Sequence[int]) -> list[tuple[int, ...]]:
    """The shape of one sample after each stage, found by a forward pass of zeros `(2, *input_shape)`
    in eval mode (BatchNorm statistics are left as they were)."""
    h = torch.zeros(2, *input_shape, device=next(stages[0].parameters()).device)
    shapes = []
    for stage in stages:
        was_training = stage.training
        h = stage.eval()(h)
        stage.train(was_training)
        shapes.append(tuple(h.shape[1:]))
    return shapes
