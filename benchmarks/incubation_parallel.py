"""Wall-clock of the K = 4 incubations of Deep Incubation: one after the other vs 2 worker processes.

    python benchmarks/incubation_parallel.py [--steps 600] [--width 256]

The incubations share nothing but the frozen meta model, so they parallelize like independent
jobs. Every incubation runs with 1 torch thread in both modes (so both give bit-identical
weights, which is checked); a sequential run with 2 threads is timed too, for reference.
The parallel time includes starting the spawned worker processes (forced with parallel=True; the
start-up measured is printed, which `parallel=None` then uses in this session). Target: >= 1.6x on 2 cores.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from modlearn import incubation
from modlearn.data import load_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600, help="incubation steps per stage")
    parser.add_argument("--width", type=int, default=256)
    args = parser.parse_args()
    data = load_dataset("digits", resize=28, verbose=False)
    meta, target = incubation.make_pair("resmlp", data.input_shape, data.num_classes, width=args.width)
    config = incubation.IncubationConfig(incubation_steps=args.steps, workers=2, threads=1)
    inc = incubation.DeepIncubation(meta, target, data.input_shape, config, incubation.paper_train(lr=1e-3))
    print(
        f"{torch.get_num_threads()} CPU threads available; target = 4 stages x 3 residual blocks of width "
        f"{args.width}; {args.steps} incubation steps per stage (batch {inc.train.batch_size})"
    )
    timing = incubation.time_incubation(inc, data, parallel=True)
    print(f"sequential, 1 thread per incubation : {timing['sequential_s']:6.1f} s")
    print(f"parallel, 2 processes x 1 thread    : {timing['parallel_s']:6.1f} s (with the workers' start)")
    print(f"start-up of the 2 workers (measured): {incubation.worker_start_s(2):6.1f} s")
    print(f"speed-up vs sequential 1 thread : {timing['speedup']:.2f}x (target >= 1.6x)")
    print(f"parallel and sequential stage weights bit-identical: {timing['identical']}", flush=True)
    inc.config = replace(config, threads=2)
    start = time.perf_counter()
    inc.incubate_all(data, parallel=False)
    two_threads = time.perf_counter() - start
    print(f"sequential, 2 threads per incubation: {two_threads:6.1f} s")
    print(f"speed-up vs sequential 2 threads: {two_threads / timing['parallel_s']:.2f}x")


if __name__ == "__main__":
    main()
