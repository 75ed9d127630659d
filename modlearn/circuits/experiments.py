"""Notebook 07's experiments: corrupted batches, circuits of every output of every network, tables."""

from __future__ import annotations

import torch
import torch.nn as nn

from .acdc import Circuit, acdc
from .patching import PatchingProblem
from .reading import circuit_overlap


def paired_corruption(x: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """A corrupted batch for `x`: each input paired with another input of the same batch."""
    if len(x) < 2:
        raise ValueError("a corrupted batch needs at least two inputs to pair")
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    perm = torch.where(perm == torch.arange(len(x)), (perm + 1) % len(x), perm)
    return x[perm.to(x.device)]


def class_batches(
    x: torch.Tensor, y: torch.Tensor, label: int, n: int = 64, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` clean inputs of class `label` and `n` corrupted inputs drawn from the other classes."""
    gen = torch.Generator().manual_seed(seed)
    mine, others = (y == label).nonzero().flatten().cpu(), (y != label).nonzero().flatten().cpu()
    if len(mine) == 0 or len(others) == 0:
        raise ValueError(f"class {label} needs examples of itself and of other classes in y")
    n = min(n, len(mine))
    pick = mine[torch.randperm(len(mine), generator=gen)[:n]]
    return x[pick], x[others[torch.randint(len(others), (n,), generator=gen)]]


def discover_outputs(
    models: dict[str, nn.Module],
    batches: dict[int, tuple[torch.Tensor, torch.Tensor]],
    tau: float,
    metric: str = "mse",
    ablation: str = "patch",
) -> dict[tuple[str, int], Circuit]:
    """ACDC for every network and every output: `batches[output] = (clean, corrupt)`."""
    return {
        (name, output): acdc(PatchingProblem(model, clean, corrupt, output, metric, ablation), tau)
        for name, model in models.items()
        for output, (clean, corrupt) in batches.items()
    }


def summarize(found: dict[tuple[str, int], Circuit]) -> dict[str, dict[str, float]]:
    """Per network: total edges, mean faithfulness, total discovery time, shared hidden neurons
    (summed over pairs of outputs; 0 means the output circuits are disjoint)."""
    table: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(n for n, _ in found):
        mine = [c for (n, _), c in found.items() if n == name]
        shared = sum(circuit_overlap(a, b) for k, a in enumerate(mine) for b in mine[k + 1 :])
        table[name] = {
            "edges": sum(c.edges for c in mine),
            "faithfulness": sum(c.faithfulness for c in mine) / len(mine),
            "seconds": sum(c.seconds for c in mine),
            "shared_neurons": shared,
        }
    return table


def format_summary(table: dict[str, dict[str, float]]) -> str:
    """`summarize`'s table as text, one network per row."""
    lines = [f"{'network':<18} {'edges':>7} {'faithfulness':>13} {'seconds':>8} {'shared neurons':>15}"]
    lines += [
        f"{name:<18} {row['edges']:>7d} {row['faithfulness']:>13.3f} {row['seconds']:>8.2f} "
        f"{row['shared_neurons']:>15d}"
        for name, row in table.items()
    ]
    return "\n".join(lines)
