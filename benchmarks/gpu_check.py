"""On CUDA, train the models of the series a few hundred steps with `fit`; print samples/s and peak memory.

Exits cleanly with a message where no GPU is present (CI never needs one).

    python benchmarks/gpu_check.py [--steps 300]
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Callable

import torch

import modlearn as ml

STEPS = 300


def _digits28(n: int = 16384) -> ml.Dataset:
    """Digits upsampled to 28x28 and tiled to `n` training samples (MNIST-sized work, no download)."""
    ds = ml.load_dataset("digits", resize=28, verbose=False)
    reps = -(-n // len(ds.train))
    ds.train = ml.Split(ds.train.x.repeat(reps, 1, 1, 1)[:n], ds.train.y.repeat(reps)[:n])
    return ds


def model_check(kind: str, batch: int = 256) -> Callable[[int], int]:
    def run(steps: int) -> int:
        ds = _digits28()
        model = ml.make_model(kind, ds.input_shape)
        ml.fit(model, ds, ml.TrainConfig(epochs=100, max_steps=steps, batch_size=batch, progress=False))
        return steps * batch
    return run


CHECKS: dict[str, Callable[[int], int]] = {
    "e2e mlp": model_check("mlp"),
    "e2e cnn": model_check("cnn"),
    "e2e vit": model_check("vit"),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=STEPS)
    parser.add_argument("--only", default="", help="run the checks whose name contains this text")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("No CUDA device here: nothing to check (the series runs on the CPU; CI never needs a GPU).")
        return 0
    print(f"device: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, {args.steps} steps per check\n")
    failures = 0
    for name, check in CHECKS.items():
        if args.only not in name:
            continue
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
        start = time.perf_counter()
        try:
            samples = check(args.steps)
        except Exception as err:  # report every check, then fail
            failures += 1
            print(f"{name:>24}: FAILED {type(err).__name__}: {err}")
            continue
        torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        print(f"{name:>24}: {samples / seconds:10.0f} samples/s  {seconds:6.1f} s  "
              f"peak {torch.cuda.max_memory_allocated() / 2**20:8.1f} MiB")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
