"""Reading circuits: the fewest edges at a faithfulness, overlaps, a circuit's outputs or model."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn as nn

from ..validate import check_type
from .acdc import Circuit, acdc
from .networks import model_linears
from .patching import PatchingProblem


def edges_at_faithfulness(circuits: Sequence[Circuit], level: float) -> int | None:
    """The fewest edges among `circuits` whose faithfulness is at least `level` (None if none is)."""
    sizes = [c.edges for c in circuits if c.faithfulness >= level]
    return min(sizes) if sizes else None


def edges_for_faithfulness(problem: PatchingProblem, level: float, taus: Sequence[float]) -> Circuit:
    """ACDC at each threshold of `taus`, in the order given (largest first: smallest circuits, fastest
    runs), up to the first circuit whose faithfulness reaches `level`; that circuit, or the last one
    tried when none does (put `tau = 0`, which keeps every edge with an effect, last)."""
    check_type("taus", taus, (list, tuple), owner="edges_for_faithfulness", hint="pass e.g. (1e-2, 1e-3, 0)")
    if not taus:
        raise ValueError("edges_for_faithfulness(taus=()): taus must list at least one threshold")
    for tau in taus:
        circuit = acdc(problem, tau)
        if circuit.faithfulness >= level:
            break
    return circuit


def circuit_overlap(a: Circuit, b: Circuit) -> int:
    """How many hidden neurons both circuits use (0: the circuits are disjoint inside the network)."""
    return int(sum(int((x & y).sum()) for x, y in zip(a.nodes()[1:-1], b.nodes()[1:-1], strict=True)))


def circuit_output(problem: PatchingProblem, circuit: Circuit) -> torch.Tensor:
    """The circuit's outputs on the clean batch, in the model's output order: `(batch, n_out)`."""
    masks = [m.to(problem.h0.device, torch.float64) for m in circuit.masks]
    return problem.run(masks).out[:, problem.net.output_order]


def apply_circuit(model: nn.Module, circuit: Circuit, problem: PatchingProblem | None = None) -> nn.Module:
    """A copy of `model` that computes the circuit: removed weights set to zero (zero ablation), or
    their mean contribution folded into the biases (mean ablation: pass the `problem`).

    A patching circuit depends on each corrupted input, so it is no fixed model: use `circuit_output`.
    """
    if problem is not None and problem.ablation == "patch":
        raise ValueError(
            "a patching circuit needs the corrupted inputs: use circuit_output(problem, circuit), "
            "or build the problem with ablation='zero' or 'mean'"
        )
    copied = copy.deepcopy(model)
    linears, _ = model_linears(copied)
    if len(linears) != len(circuit.masks):
        raise ValueError(f"the circuit has {len(circuit.masks)} layers but the model {len(linears)}")
    with torch.no_grad():
        for layer, (lin, mask) in enumerate(zip(linears, circuit.masks, strict=True)):
            keep = mask.to(lin.weight.device, lin.weight.dtype)
            if problem is not None and problem.ablation == "mean":
                folded = ((1 - keep) * lin.weight).double() @ problem.refs[layer][0]
                lin.bias += folded.to(lin.bias.dtype)
            lin.weight *= keep
    return copied
