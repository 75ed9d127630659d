"""Edges tested per second: vectorized edge patching vs one edge at a time.

On a [784, 100, 100, 10] MLP (random weights: the cost does not depend on training) with a batch
of clean and corrupted inputs, measure how fast `PatchingProblem.edge_effects` (one receiver's
change pushed through the layers above, many edges per batched pass) and `edge_effects_loop`
(one full forward pass of the patched network per edge) test the edges of each layer, check
that they agree, and print the ratio. Run: `python benchmarks/acdc_speed.py` (< 2 minutes).
"""

from __future__ import annotations

import time
from functools import partial

import torch

from modlearn import circuits
from modlearn.models import MLP


def edges_per_second(fn, rows: list[int], n_in: int) -> tuple[float, torch.Tensor]:
    start = time.perf_counter()
    values = fn(rows)
    return len(rows) * n_in / (time.perf_counter() - start), values


def main(batch: int = 100, loop_edges: int = 300, fast_edges: int = 20_000, seed: int = 0) -> float:
    torch.set_num_threads(1)  # both paths on one thread: tiny ops, and fair on a shared machine
    torch.manual_seed(seed)
    model = MLP(784, hidden=(100, 100), num_classes=10)
    clean, corrupt = torch.randn(batch, 784), torch.randn(batch, 784)
    problem = circuits.PatchingProblem(model, clean, corrupt, output=None, metric="kl")
    masks = problem.all_edges()
    print(
        f"[784, 100, 100, 10] MLP, {problem.net.num_edges:,} edges, batch {batch}, "
        f"{torch.get_num_threads()} torch threads, float64"
    )
    ratios = []
    for layer, n_in in enumerate(problem.net.widths[:-1]):
        loop_rows = list(range(max(1, loop_edges // n_in)))
        fast_rows = list(range(min(problem.net.widths[layer + 1], max(1, fast_edges // n_in))))
        slow_rate, slow = edges_per_second(partial(problem.edge_effects_loop, masks, layer), loop_rows, n_in)
        fast_rate, fast = edges_per_second(partial(problem.edge_effects, masks, layer), fast_rows, n_in)
        error = float((fast[: len(loop_rows)] - slow).abs().max())
        ratios.append(fast_rate / slow_rate)
        print(
            f"layer {layer} ({n_in:>3} -> {problem.net.widths[layer + 1]:>3}): one at a time "
            f"{slow_rate:>9,.0f} edges/s | vectorized {fast_rate:>10,.0f} edges/s | "
            f"x{ratios[-1]:.1f} | max |difference| {error:.1e}"
        )
    overall = (
        sum(r * w.numel() for r, w in zip(ratios, problem.net.weights, strict=True)) / problem.net.num_edges
    )
    print(f"speed-up of vectorized patching (edge-weighted over layers): x{overall:.1f}")
    return overall


if __name__ == "__main__":
    main()
