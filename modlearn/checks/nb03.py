"""Notebook 03's exercises: build a hybrid, and find which stages a hybrid's gradient reaches."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn

from ..incubation import StagedModel, build_hybrid, make_pair, split_stages, stage_gradients
from .core import CheckFailed, Exercise, compare_values, register

_SHAPE = (1, 8, 8)


def _stages(seed: int = 0) -> tuple[nn.ModuleList, nn.ModuleList]:
    meta, target = make_pair("resmlp", _SHAPE, 10, width=16, blocks_per_stage=2, seed=seed)
    return split_stages(meta, 4, "meta"), split_stages(target, 4, "target")


def _hybrid_cases():
    meta, target = _stages()
    for index in (0, 2, 3):
        where = {0: "the first stage", 2: "a middle stage", 3: "the last stage (with the head)"}[index]
        yield f"incubating {where}, index {index}", (meta, target[index], index), {}


def _summary(model: Any) -> dict[str, Any]:
    """What a hybrid must get right: its stages, which of them train, their modes and its function."""
    if not isinstance(model, StagedModel):
        raise CheckFailed(f"expected an incubation.StagedModel, got {type(model).__name__}")
    probe = torch.randn(5, *_SHAPE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        output = model.eval()(probe)
    return {
        "number of stages": len(model.stages),
        "trainable stages": [any(p.requires_grad for p in s.parameters()) for s in model.stages],
        "stages in training mode after .train()": [s.training for s in model.train().stages],
        "output on a probe batch": output,
    }


def _compare_hybrids(got: Any, expected: StagedModel, case: str) -> None:
    try:
        summary = _summary(got)
    except CheckFailed as err:
        raise CheckFailed(f"case '{case}': {err}") from err
    except Exception as err:
        raise CheckFailed(
            f"case '{case}': your hybrid raised {type(err).__name__} on a probe batch: {err}"
        ) from err
    compare_values(summary, _summary(expected), case, atol=1e-6, rtol=1e-5)


def hybrid_gradients(hybrid: StagedModel, x: torch.Tensor, y: torch.Tensor) -> dict[str, list[float]]:
    """`incubation.stage_gradients` with the exercise's signature: `x: (n, 1, 8, 8)`, `y: (n,)`."""
    return stage_gradients(hybrid, (x, y))


def _gradient_cases():
    meta, target = _stages(1)
    gen = torch.Generator().manual_seed(5)
    for index in (0, 1, 3):
        x, y = torch.randn(16, *_SHAPE, generator=gen), torch.randint(0, 10, (16,), generator=gen)
        yield (
            f"the hybrid of stage {index}, a batch of 16",
            (build_hybrid(meta, target[index], index), x, y),
            {},
        )
    x, y = torch.randn(1, *_SHAPE, generator=gen), torch.randint(0, 10, (1,), generator=gen)
    yield "the hybrid of stage 2, a batch of one", (build_hybrid(meta, target[2], 2), x, y), {}


register(
    Exercise(
        name="build_hybrid",
        notebook="03_deep_incubation",
        title="Build a hybrid",
        difficulty=1,
        minutes=10,
        reference=build_hybrid,
        cases=_hybrid_cases,
        compare=_compare_hybrids,
    )
)
register(
    Exercise(
        name="hybrid_gradients",
        notebook="03_deep_incubation",
        title="Where the gradient flows in a hybrid",
        difficulty=2,
        minutes=20,
        reference=hybrid_gradients,
        cases=_gradient_cases,
        atol=1e-6,
        rtol=1e-4,
    )
)
