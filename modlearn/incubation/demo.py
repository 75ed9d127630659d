"""The command line: `python -m modlearn.incubation --demo --out FILE` incubates a small residual MLP's
4 stages on the digits and saves the assembled weights; under
`python -m torch.distributed.run --nproc_per_node 2` rank r incubates stages r, r + world, ..."""

from __future__ import annotations

import argparse

import torch

from ..data import Dataset, load_dataset
from ..train import distributed
from .config import IncubationConfig, paper_train
from .hybrid import torch_threads
from .method import DeepIncubation
from .staged import make_pair


def demo_problem(steps: int = 30, seed: int = 0) -> tuple[DeepIncubation, Dataset]:
    """A small incubation on the digits, meta model already pretrained (1 thread, deterministic)."""
    data = load_dataset("digits", seed=seed, verbose=False)
    meta, target = make_pair(
        "resmlp", data.input_shape, data.num_classes, width=32, blocks_per_stage=2, seed=seed
    )
    config = IncubationConfig(meta_steps=steps, incubation_steps=steps, finetune_steps=steps)
    inc = DeepIncubation(meta, target, data.input_shape, config, paper_train(lr=2e-3, seed=seed))
    # every rank pretrains the same meta model in its own process, as the single-process demo does
    with torch_threads(config.threads), distributed.each_rank_alone():
        inc.pretrain_meta(data)
    return inc, data


def main(argv: list[str] | None = None) -> int:
    """Run the demo; rank 0 saves the assembled state dict to `--out`. Returns the exit status."""
    parser = argparse.ArgumentParser(
        description="Deep Incubation demo: incubate the 4 stages of a "
        "residual MLP on the digits in parallel and save the assembled weights."
    )
    parser.add_argument("--demo", action="store_true", help="run the demo (the only mode)")
    parser.add_argument("--out", required=True, help="where rank 0 saves the assembled state dict")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sequential", action="store_true", help="incubate one stage after the other")
    args = parser.parse_args(argv)
    if not args.demo:
        parser.error("pass --demo")
    inc, data = demo_problem(args.steps, args.seed)
    inc.incubate_all(data, parallel=not args.sequential)
    ranks = distributed.join(torch.device("cpu")) if inc.mode == "ranks" else None
    if ranks is None or ranks.is_main:
        torch.save(inc.assemble().state_dict(), args.out)
        print(f"saved the assembled model to {args.out} (world size {distributed.world_size()})")
    distributed.leave()
    return 0
