"""Small synthetic tasks: modular addition (notebooks 04, 06), BIMT's symbolic formulas, two moons."""

from __future__ import annotations

import math

import torch

from .datasets import Dataset, Split


def modular_addition(p: int = 59, train_fraction: float = 0.8, seed: int = 0) -> Dataset:
    """Every pair `(a, b)` with `0 <= a, b < p`, labelled `(a + b) mod p` (BIMT, clusterability).

    `x: (n, 2)` int64 token pairs, `y: (n,)`. A seeded `train_fraction` of the pairs trains;
    the rest is split evenly into validation and test.
    """
    if p < 2:
        raise ValueError(f"p={p} must be >= 2")
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction={train_fraction} must lie in (0, 1)")
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    x = torch.stack([a.flatten(), b.flatten()], dim=1)
    y = (x[:, 0] + x[:, 1]) % p
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_train = int(round(train_fraction * len(y)))
    n_val = (len(y) - n_train) // 2
    parts = [perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :]]
    splits = [Split(x[i], y[i]) for i in parts]
    return Dataset(
        f"modular-addition-{p}",
        *splits,
        num_classes=p,
        description=f"(a + b) mod {p}, {len(parts[0])} of {len(y)} pairs for training",
        class_names=[str(i) for i in range(p)],
    )


def _independence(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([(x[:, 0] + x[:, 2]) ** 3, x[:, 1] ** 2 + torch.sin(math.pi * x[:, 3])], dim=1)


def _feature_sharing(x: torch.Tensor) -> torch.Tensor:
    return torch.cumsum(x**2, dim=1)


def _compositionality(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt((x[:, 0] - x[:, 1]) ** 2 + (x[:, 2] - x[:, 3]) ** 2).unsqueeze(1)


SYMBOLIC_TASKS = {
    "independence": (4, _independence, ["(x1+x3)^3", "x2^2+sin(pi x4)"]),
    "feature_sharing": (3, _feature_sharing, ["x1^2", "x1^2+x2^2", "x1^2+x2^2+x3^2"]),
    "compositionality": (4, _compositionality, ["sqrt((x1-x2)^2+(x3-x4)^2)"]),
}


def symbolic_task(name: str, n_train: int = 100, n_test: int = 100, seed: int = 0) -> Dataset:
    """BIMT's symbolic formulas on inputs drawn from U[-1, 1]^d (Liu, Gan & Tegmark 2023).

    - `independence`: `y = ((x1 + x3)^3, x2^2 + sin(pi x4))`, d = 4, two unrelated outputs;
    - `feature_sharing`: `y = (x1^2, x1^2 + x2^2, x1^2 + x2^2 + x3^2)`, d = 3;
    - `compositionality`: `y = sqrt((x1 - x2)^2 + (x3 - x4)^2)`, d = 4.

    `x: (n, d)` float, `y: (n, outputs)` float; validation and test have `n_test` points each.
    `num_classes` holds the number of outputs and `class_names` their formulas.
    """
    if name not in SYMBOLIC_TASKS:
        raise ValueError(f"unknown symbolic task {name!r}: choose one of {tuple(SYMBOLIC_TASKS)}")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train={n_train} and n_test={n_test} must be >= 1")
    dim, formula, names = SYMBOLIC_TASKS[name]
    gen = torch.Generator().manual_seed(seed)
    splits = []
    for n in (n_train, n_test, n_test):
        x = torch.rand(n, dim, generator=gen) * 2 - 1
        splits.append(Split(x, formula(x)))
    return Dataset(
        name,
        *splits,
        num_classes=len(names),
        description=f"symbolic task {name}: " + ", ".join(names) + f" on U[-1,1]^{dim}",
        class_names=names,
    )


def two_moons(n: int = 200, noise: float = 0.1, seed: int = 0) -> Dataset:
    """scikit-learn's two interleaved half-moons: `n` training points, `n // 2` validation and test.

    `x: (n, 2)` float, `y: (n,)` int64 in {0, 1}.
    """
    from sklearn.datasets import make_moons

    if n < 2 or noise < 0:
        raise ValueError(f"n={n} must be >= 2 and noise={noise} >= 0")
    splits = []
    for k, size in enumerate((n, max(1, n // 2), max(1, n // 2))):
        x, y = make_moons(size, noise=noise, random_state=seed * 3 + k)
        splits.append(Split(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)))
    return Dataset(
        "two-moons",
        *splits,
        num_classes=2,
        description=f"two moons, {n} training points, noise {noise}",
        class_names=["0", "1"],
    )
