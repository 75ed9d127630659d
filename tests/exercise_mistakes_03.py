"""Plausible mistakes in notebook 03's exercises; each must fail its checker (tests/test_exercises.py)."""

import copy
import math

import torch.nn.functional as F

from modlearn import incubation


def _hybrid_meta_not_frozen(meta_stages, target_stage, index):
    stages = [target_stage if j == index else copy.deepcopy(m) for j, m in enumerate(meta_stages)]
    return incubation.StagedModel(stages)


def _hybrid_target_frozen_too(meta_stages, target_stage, index):
    return incubation.StagedModel(
        incubation.frozen_copy(target_stage if j == index else m) for j, m in enumerate(meta_stages)
    )


def _hybrid_off_by_one(meta_stages, target_stage, index):
    position = (index + 1) % len(meta_stages)
    return incubation.build_hybrid(meta_stages, target_stage, position)


def _gradients(hybrid, x, y, sum_of_norms=False, none_check=True):
    outputs, h = [], x
    for stage in hybrid.stages:
        h = stage(h)
        if h.requires_grad:
            h.retain_grad()
        outputs.append(h)
    F.cross_entropy(h, y).backward()
    output_grad = [o.grad.norm().item() if o.grad is not None or not none_check else 0.0 for o in outputs]
    norms = [[p.grad.norm().item() for p in s.parameters() if p.grad is not None] for s in hybrid.stages]
    combine = sum if sum_of_norms else (lambda v: math.sqrt(sum(n**2 for n in v)))
    return {"output_grad": output_grad, "weight_grad": [combine(v) for v in norms]}


def _gradients_without_none_check(hybrid, x, y):
    return _gradients(hybrid, x, y, none_check=False)


def _gradients_summing_norms(hybrid, x, y):
    return _gradients(hybrid, x, y, sum_of_norms=True)


MISTAKES = {
    "build_hybrid": [
        ("meta stages copied but not frozen", _hybrid_meta_not_frozen, "trainable stages"),
        ("the target stage frozen too", _hybrid_target_frozen_too, "trainable stages"),
        ("the target put one position off", _hybrid_off_by_one, "index 0': your hybrid raised"),
    ],
    "hybrid_gradients": [
        ("the output of a stage with no gradient read as o.grad", _gradients_without_none_check, "raised"),
        (
            "a stage's weight norm as the sum of its parameters' norms",
            _gradients_summing_norms,
            "weight_grad",
        ),
    ],
}
