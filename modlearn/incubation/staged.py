"""Models cut into K stages: `StagedModel`, `split_stages` (a `BlockModel` into equal stages), the
interface check of a (meta, target) pair, and the pairs themselves (`make_pair`, `default_meta`)."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator, Sequence

import torch
import torch.nn as nn

from ..models import BlockModel, BlockSequence, ResidualMLP, TinyViT, split_blocks

MODEL_KINDS = ("resmlp", "vit")


class StagedModel(nn.Module):
    """Stages applied in order, `x -> stages[K-1](... stages[0](x))`: hybrids are these.

    `x: (batch, *input)` -> the last stage's output. A frozen stage (no parameter requires gradients)
    stays in eval mode when the model trains, so its BatchNorm statistics and dropout stay those of
    inference.
    """

    def __init__(self, stages: Iterable[nn.Module]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)

    def train(self, mode: bool = True) -> StagedModel:
        super().train(mode)
        for stage in self.stages:
            if not any(p.requires_grad for p in stage.parameters()):
                stage.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x


def _stage_depth(model: BlockModel, num_stages: int, name: str) -> int:
    """Blocks per stage of `model`'s body `blocks[1:]`; a `ValueError` unless they cut into equal stages."""
    body = len(model.blocks) - 1
    if num_stages < 1 or body < num_stages or body % num_stages:
        problem = f"stage {body} would be empty" if body < num_stages else "the stages would differ in depth"
        raise ValueError(
            f"{name} has {body} blocks after its input embedding, which do not cut into "
            f"{num_stages} equal stages ({problem}): use a depth that is a multiple of "
            f"{num_stages}"
        )
    return body // num_stages


def split_stages(model: nn.Module, num_stages: int, name: str = "model") -> nn.ModuleList:
    """The `num_stages` stages of `model`, sharing its modules (no copy).

    A `BlockModel`'s body `blocks[1:]` is cut into equal groups (`models.split_blocks`); stage 0 also
    owns `blocks[0]` (the input embedding) and the last stage owns the head. A `StagedModel` returns
    its own stages. Raises a `ValueError` naming the stage that cannot be cut.
    """
    if isinstance(model, StagedModel):
        if len(model.stages) != num_stages:
            raise ValueError(
                f"{name} has {len(model.stages)} stages but {num_stages} are asked for: stage "
                f"{min(len(model.stages), num_stages)} has no counterpart"
            )
        return model.stages
    if not isinstance(model, BlockModel):
        raise ValueError(
            f"{name} is a {type(model).__name__}: pass a BlockModel (ResidualMLP, TinyViT) or a StagedModel"
        )
    _stage_depth(model, num_stages, name)
    ranges = split_blocks(len(model.blocks) - 1, num_stages)
    stages = []
    for s, (start, stop) in enumerate(ranges):
        blocks = list(model.blocks[1 + start : 1 + stop])
        if s == 0:
            blocks.insert(0, model.blocks[0])
        if s == num_stages - 1:
            blocks.append(model.head)
        stages.append(nn.Sequential(*blocks))
    return nn.ModuleList(stages)


@contextlib.contextmanager
def eval_mode(modules: Sequence[nn.Module]) -> Iterator[None]:
    """Run the block with `modules` in eval mode, then restore each one's mode."""
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


def on_cpu(module: nn.Module) -> nn.Module:
    """`module` itself when it lives on the CPU, else a CPU copy."""
    return module if all(p.device.type == "cpu" for p in module.parameters()) else copy.deepcopy(module).cpu()


@torch.no_grad()
def check_compatible(
    meta_stages: Sequence[nn.Module], target_stages: Sequence[nn.Module], input_shape: Sequence[int]
) -> None:
    """Raise a `ValueError` naming the first stage where the target cannot replace the meta model.

    A probe input `(2, *input_shape)` runs through the meta stages; each target stage must accept the
    meta stage's input and return the meta stage's output shape.
    """
    if len(meta_stages) != len(target_stages):
        first = min(len(meta_stages), len(target_stages))
        raise ValueError(
            f"the meta model has {len(meta_stages)} stages but the target has "
            f"{len(target_stages)}: stage {first} has no counterpart; cut both into the same K"
        )
    h = torch.zeros(2, *input_shape)
    with eval_mode([*meta_stages, *target_stages]):
        for i, (meta, target) in enumerate(zip(meta_stages, target_stages, strict=True)):
            expected = on_cpu(meta)(h)
            try:
                got = on_cpu(target)(h)
            except RuntimeError as err:
                raise ValueError(
                    f"stage {i}: the target stage cannot take the meta stage's input of shape "
                    f"{tuple(h.shape[1:])} ({err}); give meta and target the same widths"
                ) from err
            if got.shape != expected.shape:
                raise ValueError(
                    f"stage {i}: the target stage outputs shape {tuple(got.shape[1:])} but the "
                    f"meta stage outputs {tuple(expected.shape[1:])}; give meta and target "
                    "the same widths"
                )
            h = expected


def make_pair(
    kind: str,
    input_shape: Sequence[int],
    num_classes: int = 10,
    width: int = 128,
    blocks_per_stage: int = 3,
    stages: int = 4,
    seed: int = 0,
) -> tuple[BlockModel, BlockModel]:
    """`(meta, target)`: the same architecture with 1 and `blocks_per_stage` blocks per stage.

    `kind`: `"resmlp"` (`ResidualMLP` of `width`) or `"vit"` (`TinyViT` with `dim=width`);
    `input_shape`: `(C, H, W)` of one sample.
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}: choose one of {MODEL_KINDS}")
    if blocks_per_stage < 1:
        raise ValueError(f"blocks_per_stage={blocks_per_stage} must be >= 1")

    def build(depth: int) -> BlockModel:
        if kind == "resmlp":
            return ResidualMLP(input_shape, width=width, depth=depth, num_classes=num_classes)
        c, h = input_shape[0], input_shape[1]
        return TinyViT(image_size=h, in_channels=c, num_classes=num_classes, dim=width, depth=depth)

    torch.manual_seed(seed)
    meta = build(stages)
    return meta, build(stages * blocks_per_stage)


def default_meta(target: BlockModel, stages: int) -> BlockSequence:
    """`make_pair`'s rule for any `BlockModel` target: its architecture with one block per stage.

    A copy of the target's input embedding `blocks[0]`, of the first block of each of its `stages`
    stages, and of its head, starting from the target's initial weights of those modules (the target
    is not changed). It fits the target where every block of a stage keeps the stage's width
    (residual MLPs, transformers); `check_compatible` says where it does not.
    """
    _stage_depth(target, stages, "the target")
    firsts = [target.blocks[1 + start] for start, _ in split_blocks(len(target.blocks) - 1, stages)]
    return copy.deepcopy(BlockSequence([target.blocks[0], *firsts], target.head))
