"""Ground truth: discrete structural causal models, exact and empirical distributions, distances,
the front-door formula."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

import networkx as nx
import numpy as np
import torch


class TabularSCM:
    """A discrete structural causal model given by conditional probability tables.

    `cpts[v]` has shape `(*parent sizes, size of v)` over `parents[v]` (in that order); variables
    in `latent` are hidden from `sample`'s output. Exact distributions come from enumeration.
    """

    def __init__(
        self,
        sizes: Mapping[str, int],
        parents: Mapping[str, Sequence[str]],
        cpts: Mapping[str, np.ndarray],
        latent: Iterable[str] = (),
    ) -> None:
        self.sizes, self.parents = dict(sizes), {v: list(parents.get(v, [])) for v in sizes}
        self.latent = set(latent)
        self.cpts = {v: np.asarray(cpts[v], dtype=float) for v in sizes}
        for v in sizes:
            expected = tuple(self.sizes[p] for p in self.parents[v]) + (self.sizes[v],)
            if self.cpts[v].shape != expected or not np.allclose(self.cpts[v].sum(-1), 1):
                raise ValueError(
                    f"cpt of {v!r} must have shape {expected} and rows summing to 1, "
                    f"got shape {self.cpts[v].shape}"
                )
        dag = nx.DiGraph([(p, v) for v in sizes for p in self.parents[v]])
        dag.add_nodes_from(sizes)
        self.order = list(nx.topological_sort(dag))

    @property
    def observed(self) -> list[str]:
        return [v for v in self.order if v not in self.latent]

    def _check_do(self, do: Mapping[str, int]) -> None:
        for name, value in do.items():
            if name not in self.sizes:
                raise ValueError(f"unknown intervention variable {name!r}: choose from {self.observed}")
            if not 0 <= int(value) < self.sizes[name]:
                raise ValueError(f"do({name}={value}): {name} takes values 0..{self.sizes[name] - 1}")

    def sample(
        self, n: int, do: Mapping[str, int] | None = None, seed: int = 0, include_latent: bool = False
    ) -> dict[str, torch.Tensor]:
        """`n` joint samples as `int64` tensors `(n,)`, observational or under `do`."""
        do = dict(do or {})
        self._check_do(do)
        rng = np.random.default_rng(seed)
        values: dict[str, np.ndarray] = {}
        for v in self.order:
            if v in do:
                values[v] = np.full(n, int(do[v]))
                continue
            probs = self.cpts[v][tuple(values[p] for p in self.parents[v])]
            probs = np.broadcast_to(probs, (n, self.sizes[v]))
            values[v] = (rng.random((n, 1)) > probs.cumsum(axis=1)).sum(axis=1).clip(max=self.sizes[v] - 1)
        keep = self.order if include_latent else self.observed
        return {v: torch.as_tensor(values[v], dtype=torch.long) for v in keep}

    def distribution(self, targets: Sequence[str], do: Mapping[str, int] | None = None) -> np.ndarray:
        """The exact joint `P(targets | do)` as an array of shape `(sizes of targets)`."""
        do = dict(do or {})
        self._check_do(do)
        out = np.zeros([self.sizes[t] for t in targets])
        for assignment in itertools.product(*(range(self.sizes[v]) for v in self.order)):
            values = dict(zip(self.order, assignment, strict=True))
            prob = 1.0
            for v in self.order:
                if v in do:
                    prob *= float(values[v] == int(do[v]))
                else:
                    prob *= self.cpts[v][tuple(values[p] for p in self.parents[v]) + (values[v],)]
            out[tuple(values[t] for t in targets)] += prob
        return out

    def interventional(self, target: str, treatment: str) -> np.ndarray:
        """Exact `P(target | do(treatment = x))`, shape `(treatment size, target size)`."""
        return np.stack([self.distribution([target], {treatment: x}) for x in range(self.sizes[treatment])])

    def conditional(self, target: str, given: str) -> np.ndarray:
        """Exact `P(target | given = x)` (plain conditioning), shape `(given size, target size)`."""
        joint = self.distribution([given, target])
        return joint / joint.sum(axis=1, keepdims=True)


def empirical_distribution(samples: Sequence[torch.Tensor], sizes: Sequence[int]) -> np.ndarray:
    """Joint frequencies of discrete samples `(n,)` each, as an array of shape `sizes`."""
    counts = np.zeros(sizes)
    np.add.at(counts, tuple(torch.as_tensor(s).long().numpy() for s in samples), 1)
    return counts / max(1, counts.sum())


def tvd(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance `0.5 * sum |p - q|` between two distributions of the same shape."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.shape != q.shape:
        raise ValueError(f"distributions of shapes {p.shape} and {q.shape} cannot be compared")
    return 0.5 * float(np.abs(p - q).sum())


def kl(p: np.ndarray, q: np.ndarray, eps: float = 1e-8) -> float:
    """`KL(p || q) = sum p log(p / q)` (q clipped at `eps`)."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.shape != q.shape:
        raise ValueError(f"distributions of shapes {p.shape} and {q.shape} cannot be compared")
    mask = p > 0
    return float((p[mask] * np.log(p[mask] / np.maximum(q[mask], eps))).sum())


def interventional_tvd(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Mean over treatment values x of TVD(P(Y | do(x)) estimated, true); both `(x size, y size)`."""
    return float(np.mean([tvd(e, t) for e, t in zip(estimate, truth, strict=True)]))


def front_door(
    data: Mapping[str, torch.Tensor], x: str, z: str, y: str, sizes: Mapping[str, int]
) -> np.ndarray:
    """The front-door formula from samples: `P(y | do(x)) = sum_z P(z | x) sum_x' P(y | x', z) P(x')`.

    Returns shape `(size of x, size of y)`.
    """
    joint = empirical_distribution([data[x], data[z], data[y]], [sizes[x], sizes[z], sizes[y]])
    p_x = joint.sum(axis=(1, 2))
    p_z_given_x = joint.sum(axis=2) / np.maximum(p_x[:, None], 1e-12)
    p_y_given_xz = joint / np.maximum(joint.sum(axis=2, keepdims=True), 1e-12)
    inner = np.einsum("a,azy->zy", p_x, p_y_given_xz)
    return p_z_given_x @ inner


def naive_conditional(
    data: Mapping[str, torch.Tensor], x: str, y: str, sizes: Mapping[str, int]
) -> np.ndarray:
    """`P(y | x)` read off the samples (what plain conditioning gives), shape `(size x, size y)`."""
    joint = empirical_distribution([data[x], data[y]], [sizes[x], sizes[y]])
    return joint / np.maximum(joint.sum(axis=1, keepdims=True), 1e-12)
