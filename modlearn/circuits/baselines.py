"""Baselines of ACDC: attribution patching and magnitude pruning, circuits from ranked edges."""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .acdc import Circuit, bool_masks
from .patching import PatchingProblem, _log_softmax, _logit_difference


def magnitude_scores(problem: PatchingProblem) -> list[torch.Tensor]:
    """Magnitude pruning's edge score: `|W_ij|`."""
    return [w.abs() for w in problem.net.weights]


def attribution_scores(problem: PatchingProblem) -> list[torch.Tensor]:
    """Attribution patching: a first-order estimate of each edge's effect, for all edges at once.

    Removing edge `j -> i` shifts `z_i` by `-W_ij (h_j - r_j)`; to first order the readout `t`
    (target outputs, log-probabilities for KL, the logit difference) moves by `J_i` times that,
    with `J_i = dt/dz_i` from one backward pass per readout. Score = `mean_batch |dt|^2`.
    """
    net, state = problem.net, problem.full
    zs = [F.linear(state.h[0], net.weights[0], net.biases[0]).requires_grad_(True)]
    for w, b in zip(net.weights[1:], net.biases[1:], strict=True):
        zs.append(F.linear(problem.activate(len(zs) - 1, zs[-1]), w, b))
    readout = _readout(problem, zs[-1])
    grads = [torch.zeros_like(z) for z in zs]
    for k in range(readout.shape[1]):
        for total, g in zip(
            grads, torch.autograd.grad(readout[:, k].sum(), zs, retain_graph=True), strict=True
        ):
            total += g.pow(2)
    diffs = [h - r for h, r in zip(state.h[:-1], problem.refs, strict=True)]
    return [w.pow(2) * (g.T @ d.pow(2)) / len(d) for w, g, d in zip(net.weights, grads, diffs, strict=True)]


def _readout(problem: PatchingProblem, out: torch.Tensor) -> torch.Tensor:
    """What the metric reads from the output: `(batch, m)`."""
    if problem.metric_name == "kl":
        return _log_softmax(out)
    if problem.metric_name == "mse":
        return out[:, problem.targets]
    return _logit_difference(out, problem.net.output_order[problem.output])[:, None]


def ranked_circuit(
    problem: PatchingProblem, scores: list[torch.Tensor], edges: int, method: str, seconds: float = 0.0
) -> Circuit:
    """The best-scored edges that reach the targets, `edges` of them once dangling edges are dropped
    (the fewest top-k edges giving at least that many; fewer if the targets have fewer edges)."""
    scores = [s.clone() for s in scores]
    scores[-1][~problem.targets] = -1.0
    flat = torch.cat([s.flatten() for s in scores])
    if not 0 <= edges <= len(flat):
        raise ValueError(f"edges={edges} must lie in [0, {len(flat)}]")
    order = torch.argsort(flat, descending=True)[: int((flat >= 0).sum())]

    def top(k: int) -> list[torch.Tensor]:
        keep = torch.zeros_like(flat)
        keep[order[:k]] = 1.0
        parts = keep.split([s.numel() for s in scores])
        return prune_dangling(
            [part.view_as(s) for part, s in zip(parts, scores, strict=True)], problem.targets
        )

    low, high = 0, len(order)
    while low < high:  # smallest k whose pruned circuit has >= `edges` edges
        mid = (low + high) // 2
        low, high = (mid + 1, high) if sum(int(m.sum()) for m in top(mid)) < edges else (low, mid)
    masks = top(low)
    metric = float(problem.metric(problem.run(masks).out))
    return Circuit(bool_masks(masks), metric, method, seconds, None, problem.output)


def prune_dangling(masks: list[torch.Tensor], targets: torch.Tensor) -> list[torch.Tensor]:
    """Remove edges whose receiver no longer reaches a target through kept edges."""
    masks = [m.clone() for m in masks]
    alive = targets
    for layer in reversed(range(len(masks))):
        masks[layer][~alive] = 0.0
        alive = masks[layer].any(dim=0)
    return masks


def baseline_curve(problem: PatchingProblem, method: str, sizes: Sequence[int]) -> list[Circuit]:
    """Circuits of the given sizes from `"attribution"` or `"magnitude"` scores (one scoring)."""
    scorers = {"attribution": attribution_scores, "magnitude": magnitude_scores}
    if method not in scorers:
        raise ValueError(f"unknown baseline {method!r}: choose one of {sorted(scorers)}")
    start = time.perf_counter()
    scores = scorers[method](problem)
    seconds = time.perf_counter() - start
    return [ranked_circuit(problem, scores, int(k), method, seconds) for k in sizes]
