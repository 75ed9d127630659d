"""ACDC (Conmy et al. 2023): the greedy edge search, exact and vectorized, and its `Circuit`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..validate import ConfigFields, check_bool, check_float, check_type
from .patching import ABLATIONS, METRICS, ROUND_OFF, PatchingProblem


@dataclass
class Circuit:
    """A circuit: which edges are kept (`masks[l]`: bool, shaped like linear `l`'s weight).

    `metric` is the normalized distance to the full model (0 = identical, 1 = as far as the empty
    circuit); `seconds` the time its discovery took.
    """

    masks: list[torch.Tensor]
    metric: float
    method: str
    seconds: float = 0.0
    tau: float | None = None
    output: int | None = None

    @property
    def edges(self) -> int:
        return int(sum(int(m.sum()) for m in self.masks))

    @property
    def faithfulness(self) -> float:
        """`1 - metric`: 1 when the circuit reproduces the model, 0 for the empty circuit."""
        return 1.0 - self.metric

    def nodes(self) -> list[torch.Tensor]:
        """Per neuron layer, a bool mask of the neurons touched by a kept edge."""
        senders = [m.any(dim=0) for m in self.masks]
        receivers = [m.any(dim=1) for m in self.masks]
        return (
            [senders[0]] + [r | s for r, s in zip(receivers[:-1], senders[1:], strict=True)] + [receivers[-1]]
        )

    def __repr__(self) -> str:
        tau = "" if self.tau is None else f", tau={self.tau:g}"
        return (
            f"Circuit({self.method}{tau}, output={self.output}, edges={self.edges}, "
            f"faithfulness={self.faithfulness:.3f}, {self.seconds:.2f} s)"
        )


@dataclass
class ACDCConfig:
    """Settings of `acdc` (Conmy et al. 2023): threshold `tau` on the normalized metric increase.

    The paper sweeps `tau` (its CLI requires it); KL divergence is its default metric and
    patching with corrupted inputs its default ablation (`--zero-ablation` switches).
    """

    tau: float = 0.01
    metric: str = "mse"
    ablation: str = "patch"

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        fields.number("tau", 0)
        fields.choice("metric", METRICS)
        fields.choice("ablation", ABLATIONS)


def bool_masks(masks: list[torch.Tensor]) -> list[torch.Tensor]:
    """Float 0/1 masks as bool masks on the CPU (what a `Circuit` holds)."""
    return [(m > 0).cpu() for m in masks]


def acdc(problem: PatchingProblem, tau: float = 0.01, vectorized: bool = True) -> Circuit:
    """ACDC: visit neurons in reverse topological order from the target outputs; for each of a
    neuron's incoming edges, remove it if that raises the metric by at most `tau` (else keep it).

    Exact greedy ACDC, made fast two ways (`vectorized=True`): an edge test only recomputes the
    layers above the receiver, and consecutive edges are tested together (speculatively: after a
    removal, the edges behind it are tested again against the new circuit). `vectorized=False`
    runs one full forward pass per edge test and must take the same decisions. Neurons that no
    kept edge connects to the targets are skipped and their incoming edges removed.
    """
    check_type(
        "problem", problem, PatchingProblem, owner="acdc", hint="pass PatchingProblem(model, clean, corrupt)"
    )
    tau = check_float("tau", tau, 0, owner="acdc")
    check_bool("vectorized", vectorized, owner="acdc")
    prune = _prune_receiver if vectorized else _prune_receiver_loop
    start = time.perf_counter()
    masks = problem.all_edges()
    masks[-1][~problem.targets] = 0.0
    alive = problem.targets
    current = float(problem.metric(problem.run(masks).out))
    for layer in reversed(range(len(masks))):
        masks[layer][~alive] = 0.0
        for receiver in alive.nonzero().flatten().tolist():
            current = prune(problem, masks, layer, receiver, current, tau)
        alive = masks[layer].any(dim=0)
    metric = float(problem.metric(problem.run(masks).out))
    return Circuit(
        bool_masks(masks),
        metric,
        "acdc" if vectorized else "acdc-loop",
        time.perf_counter() - start,
        tau,
        problem.output,
    )


def _prune_receiver(
    problem: PatchingProblem, masks: list[torch.Tensor], layer: int, receiver: int, current: float, tau: float
) -> float:
    """ACDC's inner loop over the incoming edges of one neuron, vectorized; returns the new metric.

    Each batched pass tests the next edges twice: one at a time (`z_i - W_ij d_j`) and as growing
    prefixes removed together (`z_i - sum_{k <= j} W_ik d_k`). If the next edge stays, the single
    tests settle the run of kept edges up to the next removal; if it goes, the prefix tests settle
    the run of removed edges up to the next kept one. Either way the greedy decisions are exact.
    """
    state = problem.run(masks)
    w = problem.net.weights[layer][receiver]
    diff = state.h[layer] - problem.refs[layer]
    no_effect = (w == 0) | (diff == 0).all(dim=0)
    masks[layer][receiver, no_effect] = 0.0
    senders = (masks[layer][receiver] > 0).nonzero().flatten()
    z_receiver = state.z[layer + 1][:, receiver].clone()
    position, chunk = 0, 16
    while position < len(senders):
        batch = senders[position : position + min(chunk, problem.chunk_size() // 2)]
        shift = w[batch][:, None] * diff[:, batch].T  # (c, B)
        prefixes = z_receiver - shift.cumsum(0)
        values = problem.with_receiver(
            state,
            masks,
            layer,
            torch.full((2 * len(batch),), receiver),
            torch.cat([z_receiver - shift, prefixes]),
        )
        single, prefix = values[: len(batch)], values[len(batch) :]
        if single[0] - current <= tau + ROUND_OFF:  # a run of removals
            steps = prefix - torch.cat([prefix.new_tensor([current]), prefix[:-1]])
            run = max(1, _leading(steps <= tau + ROUND_OFF))  # edge 0: same test as single[0]
            masks[layer][receiver, batch[:run]] = 0.0
            z_receiver, current = prefixes[run - 1].clone(), float(prefix[run - 1])
        else:  # a run of kept edges, then maybe a removal
            run = _leading(single - current > tau + ROUND_OFF)
            if run < len(batch):
                masks[layer][receiver, batch[run]] = 0.0
                z_receiver, current = z_receiver - shift[run], float(single[run])
        resolved = min(run + 1, len(batch))
        position += resolved
        chunk = chunk * 2 if resolved == len(batch) else max(8, 2 * resolved)
    return current


def _leading(flags: torch.Tensor) -> int:
    """How many `True` values `flags` starts with."""
    return int(flags.long().cumprod(0).sum())


def _prune_receiver_loop(
    problem: PatchingProblem, masks: list[torch.Tensor], layer: int, receiver: int, current: float, tau: float
) -> float:
    """The same decisions as `_prune_receiver`, one full forward pass per edge."""
    for sender in range(masks[layer].shape[1]):
        masks[layer][receiver, sender] = 0.0
        value = float(problem.metric(problem.run(masks).out))
        if value - current <= tau + ROUND_OFF:
            current = value
        else:
            masks[layer][receiver, sender] = 1.0
    return current


def acdc_sweep(problem: PatchingProblem, taus: Sequence[float]) -> list[Circuit]:
    """One ACDC circuit per threshold: the Pareto curve of edges kept vs faithfulness."""
    return [acdc(problem, tau) for tau in taus]


def discover(
    model: nn.Module,
    clean: torch.Tensor,
    corrupt: torch.Tensor | None = None,
    output: int | None = None,
    config: ACDCConfig | None = None,
) -> Circuit:
    """ACDC on `model` in one call: the circuit explaining `output` on `clean` vs `corrupt`."""
    check_type("model", model, nn.Module, owner="discover", hint="pass a torch.nn.Module")
    check_type("config", config, ACDCConfig, owner="discover", optional=True, hint="pass an ACDCConfig(...)")
    config = config or ACDCConfig()
    problem = PatchingProblem(model, clean, corrupt, output, config.metric, config.ablation)
    return acdc(problem, config.tau)
