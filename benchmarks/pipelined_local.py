"""Wall-clock of DGL pipelined on 2 `torchrun` ranks vs DGL and E2E in one process, at equal steps.

    python benchmarks/pipelined_local.py [--steps 300] [--width 1024]

The model is notebook 02's pipeline MLP on the digits (8 x 8 = 64 inputs): 64 -> width -> width ->
width -> 10, cut into 2 modules (blocks 1-2: 64 x width + width x width weights; block 3 and the
head: width x width + width x 10), balanced in weights, hence in compute and in Adam's update.
`local.record_timelines` trains it three ways with 1 thread per process, from the same weights on
the same batches; seconds per step: the median time between two steps after the first 5 (start-up
excluded). On 2 cores the pipeline's target is >= 1.5x over single-process DGL.
"""

from __future__ import annotations

import argparse

from modlearn.data import load_dataset
from modlearn.local import TIMED_MODES, record_timelines
from modlearn.train import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--width", type=int, default=1024)
    args = parser.parse_args()
    data = load_dataset("digits", verbose=False)
    train = TrainConfig(lr=2e-3, batch_size=256, seed=0)
    hidden = (args.width,) * 3
    print(f"MLP 64 -> 3 x {args.width} -> 10, 2 modules, batch 256, {args.steps} steps, 1 thread per process")
    times = record_timelines(data, hidden=hidden, modules=2, steps=args.steps, train=train)
    for mode, name in TIMED_MODES.items():
        share = times.together(mode)
        print(f"{name:17s}: {1e3 * times.seconds_per_step(mode):6.2f} ms/step, 2 modules at work {share:.0%}")
    print(f"pipelined DGL vs DGL in one process: {times.speedup('pipelined', 'dgl'):.2f}x (target >= 1.5x)")
    print(f"pipelined DGL vs E2E in one process: {times.speedup('pipelined', 'e2e'):.2f}x")
    print(f"largest weight difference, pipelined vs one-process DGL: {times.max_weight_difference:.1e}")


if __name__ == "__main__":
    main()
