"""Wall-clock of the K = 4 incubations of Deep Incubation: one after the other vs 2 worker processes.

    python benchmarks/incubation_parallel.py [--steps 600] [--width 256] [--load 0]

The incubations share nothing but the frozen meta model, so they parallelize like independent
jobs. Every incubation runs with 1 torch thread in both modes (so both give bit-identical
weights, which is checked); a sequential run with 2 threads is timed too, for reference.
The first parallel run includes starting the spawned worker processes (forced with parallel=True; the
start-up measured is printed); the workers are kept, so a second parallel run measures the speed-up
without start-up. Last, `parallel=None` (the default) chooses for itself from its measured start-up
and the CPUs other processes keep busy. `--load N` runs N busy processes beside the whole benchmark
(a loaded machine). Targets on 2 cores: >= 1.6x without start-up, and not slower than sequential with
it; under load, the default not slower than sequential.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace

import torch

from modlearn import incubation
from modlearn.data import load_dataset


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """`count` processes that keep one CPU each busy while the block runs."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="incubation steps per stage")
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--load", type=int, default=0, help="busy processes beside the benchmark")
    args = parser.parse_args()
    with busy_processes(args.load):
        measure(args)


def measure(args: argparse.Namespace) -> None:
    """Sequential, parallel with start-up, parallel with kept workers, the default's choice."""
    data = load_dataset("digits", resize=28, verbose=False)
    meta, target = incubation.make_pair("resmlp", data.input_shape, data.num_classes, width=args.width)
    config = incubation.IncubationConfig(incubation_steps=args.steps, workers=2, threads=1)
    inc = incubation.DeepIncubation(meta, target, data.input_shape, config, incubation.paper_train(lr=1e-3))
    print(
        f"{torch.get_num_threads()} CPU threads available; target = 4 stages x 3 residual blocks of width "
        f"{args.width}; {args.steps} incubation steps per stage (batch {inc.train.batch_size}); "
        f"{args.load} busy processes beside it"
    )
    timing = incubation.time_incubation(inc, data, parallel=True, keep_workers=True)
    print(f"sequential, 1 thread per incubation : {timing['sequential_s']:6.1f} s")
    print(f"parallel, 2 processes x 1 thread    : {timing['parallel_s']:6.1f} s (with the workers' start)")
    kept = dict(inc.incubated)
    start = time.perf_counter()
    inc.incubate_all(data, parallel=True)  # the kept workers stop at its end
    warm = time.perf_counter() - start
    excluded = timing["sequential_s"] / warm
    print(f"parallel again, the 2 workers kept  : {warm:6.1f} s")
    print(f"start-up of the 2 workers           : {timing['parallel_s'] - warm:6.1f} s (first run - second)")
    print(f"speed-up vs sequential 1 thread, start-up included: {timing['speedup']:.2f}x (target >= 1.0x)")
    print(f"speed-up vs sequential 1 thread, start-up excluded: {excluded:.2f}x (target >= 1.6x)")
    identical = timing["identical"] and incubation.same_weights(kept, inc.incubated)
    print(f"parallel (both runs) and sequential stage weights bit-identical: {identical}", flush=True)
    start = time.perf_counter()
    inc.incubate_all(data)  # parallel=None prints what it chose
    default = time.perf_counter() - start
    print(
        f"parallel=None, the default: {default:6.1f} s, {timing['sequential_s'] / default:.2f}x vs sequential"
    )
    inc.config = replace(config, threads=2)
    start = time.perf_counter()
    inc.incubate_all(data, parallel=False)
    two_threads = time.perf_counter() - start
    print(f"sequential, 2 threads per incubation: {two_threads:6.1f} s")
    print(f"speed-up vs sequential 2 threads: {two_threads / timing['parallel_s']:.2f}x")


if __name__ == "__main__":
    main()
