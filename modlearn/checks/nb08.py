"""Notebook 08's exercises: the front-door formula, c-components, the WGAN-GP gradient penalty."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .. import causal
from ..causal.training import gradient_penalty
from .core import CheckFailed, Exercise, compare_values, register


def c_components(graph: causal.CausalGraph) -> list[tuple[str, ...]]:
    """The c-components of `graph` (`CausalGraph.c_components`): variables joined by bidirected
    paths, each in topological order, ordered by their first variable."""
    return graph.c_components()


def _compare_arrays(got: Any, expected: np.ndarray, case: str) -> None:
    """`compare_values` for a NumPy result (a tensor or a nested list is accepted too)."""
    try:
        got = torch.as_tensor(np.asarray(got, dtype=np.float64))
    except (TypeError, ValueError) as err:
        raise CheckFailed(
            f"case '{case}': expected an array of shape {expected.shape}, got {type(got).__name__}"
        ) from err
    compare_values(got, torch.as_tensor(expected), case, atol=1e-9, rtol=1e-7)


def _compare_penalties(got: Any, expected: torch.Tensor, case: str) -> None:
    """The penalty's value, and that it can train the critic (its graph reaches the weights)."""
    compare_values(got, expected, case, atol=1e-9, rtol=1e-7)
    if not got.requires_grad:
        raise CheckFailed(
            f"case '{case}': the value is right but no gradient flows from it to the critic's weights, "
            "so it cannot train the critic: pass create_graph=True to torch.autograd.grad"
        )


def _samples(joint: np.ndarray, names: tuple[str, str, str], n: int, seed: int) -> dict[str, torch.Tensor]:
    """`n` rows drawn from a joint table of three discrete variables, as `{name: (n,) tensor}`."""
    rng = np.random.default_rng(seed)
    cells = rng.choice(joint.size, size=n, p=joint.ravel())
    return {
        name: torch.as_tensor(v) for name, v in zip(names, np.unravel_index(cells, joint.shape), strict=True)
    }


def _front_door_cases():
    scm, _ = causal.front_door_scm()
    sizes = {"X": 2, "Z": 2, "Y": 2}
    yield (
        "the front-door model of section 1, 5000 samples",
        (scm.sample(5000, seed=0), "X", "Z", "Y", sizes),
        {},
    )
    weaker, _ = causal.front_door_scm(confounding=0.6, mediation=0.9)
    yield "weaker confounding, 2000 samples", (weaker.sample(2000, seed=1), "X", "Z", "Y", sizes), {}
    joint = np.random.default_rng(8).dirichlet(np.ones(24)).reshape(2, 4, 3) + 0.01
    data = _samples(joint / joint.sum(), ("smoking", "tar", "cancer"), 20000, seed=2)
    names = ("smoking", "tar", "cancer")
    yield (
        "other names, sizes 2 / 4 / 3 (smoking -> tar -> cancer)",
        (data, *names, {"smoking": 2, "tar": 4, "cancer": 3}),
        {},
    )


def _graph_cases():
    parse = causal.CausalGraph.parse
    yield "front-door: X -> Z -> Y, X <-> Y", (parse("X -> Z, Z -> Y, X <-> Y"),), {}
    yield "napkin", (parse("W -> Z, Z -> X, X -> Y, W <-> X, W <-> Y"),), {}
    yield "no confounder: every variable alone", (parse("A -> B, B -> C, A -> C"),), {}
    yield (
        "a bidirected chain A <-> C <-> D (transitive)",
        (parse("A -> B, B -> C, C -> D, A <-> C, C <-> D"),),
        {},
    )
    yield "a random graph on 9 variables", (causal.random_admg(9, seed=3),), {}


def _critic(seed: int, features: int, activation: type[torch.nn.Module] | None = torch.nn.Tanh):
    """A small float64 critic `(n, features) -> (n, 1)`; `activation=None` gives a linear one."""
    with torch.random.fork_rng():  # the notebook's random stream stays as it was
        torch.manual_seed(seed)
        if activation is None:
            return torch.nn.Linear(features, 1).double()
        return torch.nn.Sequential(torch.nn.Linear(features, 6), activation(), torch.nn.Linear(6, 1)).double()


def _penalty_cases():
    gen = torch.Generator().manual_seed(8)

    def rows(n: int, d: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        real, fake = (torch.randn(n, d, generator=gen, dtype=torch.float64) for _ in range(2))
        return real, fake, torch.rand(n, 1, generator=gen, dtype=torch.float64)

    yield "a tanh critic, 8 rows of 3 features", (_critic(0, 3), *rows(8, 3)), {}
    real, fake, _ = rows(6, 3)
    yield (
        "alpha = 1: the points are the real rows",
        (_critic(1, 3), real, fake, torch.ones(6, 1).double()),
        {},
    )
    yield "one row (n = 1)", (_critic(2, 4), *rows(1, 4)), {}
    yield "a linear critic (its gradient is its weight everywhere)", (_critic(3, 5, None), *rows(7, 5)), {}
    yield "a ReLU critic, 16 rows of 5 features", (_critic(4, 5, torch.nn.ReLU), *rows(16, 5)), {}


register(
    Exercise(
        name="front_door",
        notebook="08_modular_dcm",
        title="The front-door formula",
        difficulty=2,
        minutes=20,
        reference=causal.front_door,
        cases=_front_door_cases,
        compare=_compare_arrays,
    )
)

register(
    Exercise(
        name="c_components",
        notebook="08_modular_dcm",
        title="C-components",
        difficulty=1,
        minutes=15,
        reference=c_components,
        cases=_graph_cases,
    )
)

register(
    Exercise(
        name="gradient_penalty",
        notebook="08_modular_dcm",
        title="The WGAN-GP gradient penalty",
        difficulty=2,
        minutes=15,
        reference=gradient_penalty,
        cases=_penalty_cases,
        compare=_compare_penalties,
    )
)
