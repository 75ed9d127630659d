"""Activation memory of one training step: E2E vs greedy vs DGL, at K = 2, 4, 8 modules.

Counts the peak bytes of tensors saved for backward that are alive at once
(`modlearn.local.activation_bytes`, via `torch.autograd.graph.saved_tensors_hooks`): exact and
the same on every device, so one run gives the figure. Model: an 8-block CNN on 28x28 images,
batch 128 (and, for contrast, an 8-block MLP). Ratios are to E2E on the same batch.

    python benchmarks/local_memory.py [--batch 128]
"""

from __future__ import annotations

import argparse
import time

import torch

import modlearn as ml
from modlearn.local import LocalConfig, activation_bytes

MODELS = {
    "CNN 8 blocks (32,32,64,64,128,128,128,128), 1x28x28": lambda: ml.make_model(
        "cnn", (1, 28, 28), 10, channels=(32, 32, 64, 64, 128, 128, 128, 128)
    ),
    "MLP 8 blocks of 256, 784 inputs": lambda: ml.make_model("mlp", (1, 28, 28), 10, hidden=(256,) * 8),
}


def table(model: torch.nn.Module, batch: tuple[torch.Tensor, torch.Tensor], counts=(2, 4, 8)) -> list[str]:
    """One line per K: greedy and DGL activation bytes and their ratios to E2E."""
    e2e = activation_bytes(model, batch, LocalConfig("e2e"))
    lines = [f"  E2E: {e2e / 2**20:8.2f} MiB per step (= 1.00)"]
    for k in counts:
        cells = []
        for mode in ("greedy", "dgl"):
            used = activation_bytes(model, batch, LocalConfig(mode, num_modules=k))
            cells.append(f"{mode} {used / 2**20:7.2f} MiB = {used / e2e:.2f}x")
        lines.append(f"  K={k}: " + "   ".join(cells))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    args = parser.parse_args()
    torch.manual_seed(0)
    batch = (torch.randn(args.batch, 1, 28, 28), torch.randint(0, 10, (args.batch,)))
    start = time.perf_counter()
    print(f"Activation bytes of one training step, batch {args.batch} (float32, exact, device-independent)")
    for name, build in MODELS.items():
        print(name)
        print("\n".join(table(build(), batch)))
    print(f"({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
