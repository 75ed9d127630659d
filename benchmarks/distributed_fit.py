"""Samples per second of `fit` on 2 `torchrun` ranks (gloo) vs one process, at the same global batch.

    python benchmarks/distributed_fit.py [--samples 51200] [--width 1024] [--batches 256 2048]

For each global batch size, each configuration runs in fresh processes: one process with 1 thread,
one process with 2 threads (all of a 2-core machine), and `torchrun --nproc_per_node 2` with 1 thread
per rank. Each times a fit of `--samples` samples (samples / batch optimizer steps) after an untimed
warm-up fit, so start-up is excluded. Scaling efficiency = samples/s on 2 ranks / (2 x samples/s of
one 1-thread process). Every rank also repeats the whole optimizer update and sends the whole gradient
each step, so the efficiency grows with the batch.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

from modlearn import distributed
from modlearn.data import load_dataset
from modlearn.models import make_model
from modlearn.train import TrainConfig, fit

ROOT = Path(__file__).resolve().parents[1]


def timed_fit(steps: int, width: int, batch: int) -> float:
    """Samples per second of one fit of `steps` steps (after a warm-up fit), as this rank saw it."""
    data = load_dataset("digits", resize=28, verbose=False)
    config = TrainConfig(batch_size=batch, max_steps=steps, epochs=None, seed=0, device="cpu", progress=False)
    for warm_up in (True, False):
        torch.manual_seed(0)
        model = make_model("mlp", data.input_shape, data.num_classes, hidden=(width, width, width))
        start = time.perf_counter()
        fit(model, data, replace(config, max_steps=10) if warm_up else config)
    return steps * batch / (time.perf_counter() - start)


def launch(launcher: tuple[str, ...], threads: int, args: argparse.Namespace) -> float:
    """Run this script's `--measure` mode under `launcher` with `threads` threads; rank 0's samples/s."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, *launcher, __file__, "--measure", "--steps", str(args.samples // args.batch)]
    cmd += ["--width", str(args.width), "--batch", str(args.batch), "--threads", str(threads)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["samples_per_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=51200, help="timed samples per configuration")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--batches", type=int, nargs="+", default=[256, 2048])
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        torch.set_num_threads(args.threads)
        rate = timed_fit(args.steps, args.width, args.batch)
        if int(os.environ.get("RANK", "0")) == 0:
            print(json.dumps({"samples_per_s": rate}))
        distributed.leave()
        return
    print(f"MLP 784 -> 3 x {args.width} -> 10, {args.samples} timed samples per configuration (samples/s)")
    print("global batch | 1 process, 1 thread | 1 process, 2 threads | 2 ranks, 1 thread each | efficiency")
    for batch in args.batches:
        args.batch = batch
        one, both = launch((), 1, args), launch((), 2, args)
        ranks = launch(("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"), 1, args)
        print(
            f"{batch:12d} | {one:19.0f} | {both:20.0f} | {ranks:22.0f} | {ranks / (2 * one):.0%} "
            f"(2 ranks = {ranks / one:.2f}x one 1-thread process, {ranks / both:.2f}x one 2-thread process)"
        )


if __name__ == "__main__":
    main()
