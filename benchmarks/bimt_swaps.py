"""BIMT swaps: closed-form swap gains vs the reference algorithm, and BIMT vs plain training speed.

1. One swap round on a [784, 100, 100, 10] BioMLP (2-D geometry, MNIST settings: A = 2, l0 = 0.5,
   mean cost, last layer unpenalized): gains from two matrix products per layer (`swap_gains`)
   vs re-evaluating the whole connection cost for every candidate swap, as the paper's code does.
   Both run on float64 copies of one network; the script checks they choose the same swaps.
2. Training steps per second of full BIMT (cost + lambda schedule + swaps every 500 steps) vs
   plain training of the same network, both through `modlearn.fit`, batch 100 of MNIST-shaped data.

Usage: python benchmarks/bimt_swaps.py [--top-k 5] [--steps 1000] [--threads 1]. The paper uses
top-k 30 for MNIST; the reference then needs ~30k full-cost evaluations (minutes on a CPU), so the
default is 5 (~5k evaluations). The speed-up grows with top-k: the closed form builds each
layer's gain matrix once, whatever k.
"""

from __future__ import annotations

import argparse

import torch

from modlearn import bimt
from modlearn.data import Dataset, Split

WIDTHS = [784, 100, 100, 10]


def mnist_shaped(n: int = 2000, seed: int = 0) -> Dataset:
    """Random 784-feature inputs with 10 labels: only the shapes matter for speed."""
    gen = torch.Generator().manual_seed(seed)
    split = Split(torch.randn(n, 784, generator=gen), torch.randint(0, 10, (n,), generator=gen))
    return Dataset("mnist-shaped", split, split, split, num_classes=10, description="random, MNIST-shaped")


def training_speed(mode: str, steps: int, data: Dataset) -> float:
    torch.manual_seed(0)
    model = bimt.BioMLP(WIDTHS, "2d", spacing=0.5)
    config = bimt.BIMTConfig(
        mode=mode,
        steps=steps,
        lam=0.01,
        lam_factors=(1, 10, 100),
        lam_boundaries=(0.25, 0.5),
        weight_factor=2.0,
        reduction="mean",
        penalize_last=False,
        swap_every=500,
        top_k=30,
    )
    run = bimt.train_bimt(model, data, config, bimt.paper_train(data, lr=1e-3, batch_size=100))
    return run.history.num_steps / run.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: no hand-offs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = bimt.BioMLP(WIDTHS, "2d", spacing=0.5)
    swaps = bimt.time_swap_round(
        model, top_k=args.top_k, weight_factor=2.0, reduction="mean", penalize_last=False
    )
    print(f"one swap round on {WIDTHS}, top-{args.top_k} per layer ({swaps['swaps']} swaps made):")
    print(f"  reference (full cost per candidate): {swaps['brute_force_s']:.2f} s")
    print(f"  closed-form swap-gain matrix:        {swaps['closed_form_s'] * 1e3:.1f} ms")
    print(f"  same swaps chosen: {swaps['same_swaps']}   speed-up: {swaps['speedup']:.0f}x")
    data = mnist_shaped()
    training_speed("bimt", 20, data)  # warm-up: the first optimizer pays one-time imports
    plain, full = training_speed("none", args.steps, data), training_speed("bimt", args.steps, data)
    print(
        f"training {args.steps} steps, batch 100: plain {plain:.0f} steps/s, full BIMT {full:.0f} steps/s "
        f"(BIMT/plain = {full / plain:.2f})"
    )


if __name__ == "__main__":
    main()
