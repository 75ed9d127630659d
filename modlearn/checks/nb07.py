"""Notebook 07's exercises: edge patching, ACDC as a loop, attribution patching."""

from __future__ import annotations

import torch

from .. import bimt, circuits, data
from .core import Exercise, register


def acdc_masks(problem: circuits.PatchingProblem, tau: float) -> list[torch.Tensor]:
    """The edges ACDC keeps: a bool mask per linear, shaped like its weight. The library's own
    `circuits.acdc` with one full forward pass per edge test (`vectorized=False`), the loop the
    notebook asks for; its solved run uses this too."""
    return circuits.acdc(problem, tau, vectorized=False).masks


def _layers():
    gen = torch.Generator().manual_seed(7)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=torch.float64)

    h, w, b, r = rand(6, 5), rand(4, 5), rand(4), rand(6, 5)
    mask = (torch.rand(4, 5, generator=gen) > 0.5).double()
    yield "a random mask, patching (r: one corrupted row per clean row)", (h, w, b, mask, r), {}
    yield "every edge kept (the plain linear layer)", (h, w, b, torch.ones(4, 5, dtype=torch.float64), r), {}
    yield "every edge removed", (h, w, b, torch.zeros(4, 5, dtype=torch.float64), r), {}
    yield "mean ablation (r: one row, shape (1, n_in))", (h, w, b, mask, r.mean(0, keepdim=True)), {}
    yield "zero ablation (r = 0)", (h, w, b, mask, torch.zeros(1, 5, dtype=torch.float64)), {}


def _problems():
    task = data.symbolic_task("independence", n_train=8, n_test=48, seed=0)
    clean = task.test.x
    corrupt = circuits.paired_corruption(clean, seed=0)
    with torch.random.fork_rng():  # the notebook's random stream stays as it was
        torch.manual_seed(7)
        small = bimt.BioMLP([4, 6, 6, 2])
        torch.manual_seed(8)
        other = bimt.BioMLP([4, 5, 3, 2])
    return {
        "output y1 of a [4, 6, 6, 2] network": circuits.PatchingProblem(small, clean, corrupt, output=0),
        "output y2 of the same network": circuits.PatchingProblem(small, clean, corrupt, output=1),
        "both outputs (output=None), zero ablation": circuits.PatchingProblem(
            small, clean, output=None, ablation="zero"
        ),
        "output y1 of a [4, 5, 3, 2] network, mean ablation": circuits.PatchingProblem(
            other, clean, output=0, ablation="mean"
        ),
    }


def _acdc_cases():
    problems = _problems()
    for (name, problem), tau in zip(problems.items(), (0.01, 0.05, 0.01, 0.003), strict=True):
        yield f"{name}, tau = {tau}", (problem, tau), {}
    yield "output y1 of a [4, 6, 6, 2] network, a large tau = 0.5", (next(iter(problems.values())), 0.5), {}


def _attribution_cases():
    for name, problem in _problems().items():
        yield name, (problem,), {}


register(
    Exercise(
        name="patched_linear",
        notebook="07_circuit_discovery",
        title="A linear layer with patched edges",
        difficulty=1,
        minutes=10,
        reference=circuits.patched_linear,
        cases=_layers,
        atol=1e-10,
        rtol=1e-8,
    )
)

register(
    Exercise(
        name="acdc_loop",
        notebook="07_circuit_discovery",
        title="ACDC as a loop",
        difficulty=2,
        minutes=25,
        reference=acdc_masks,
        cases=_acdc_cases,
    )
)

register(
    Exercise(
        name="attribution_scores",
        notebook="07_circuit_discovery",
        title="Attribution patching",
        difficulty=3,
        minutes=25,
        reference=circuits.attribution_scores,
        cases=_attribution_cases,
        atol=1e-12,
        rtol=1e-7,
    )
)
