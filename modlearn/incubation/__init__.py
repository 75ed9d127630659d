"""Deep Incubation: train a large model as K stages, each inside a small frozen *meta model*.

Ni, Wang, Yu, Jiang, Cao, Huang, "Deep Incubation: Training Large Models by Divide-and-Conquering"
(ICCV 2023, arXiv 2212.04129; a.k.a. Model Assembling). Three phases, all on the one loop `train.fit`:

1. **meta pretraining**: a small model with the target's K stage interfaces and one block per
   stage, trained end to end (`DeepIncubation.pretrain_meta`);
2. **incubation** of target stage i inside the *hybrid* model = meta stages everywhere except at
   position i. Only stage i is optimized with the ordinary task loss at the output; the meta stages
   are frozen, and the downstream ones still carry the gradient back to stage i (`incubate`). The K
   incubations share nothing but the frozen meta model, so `incubate_all` runs them in worker
   processes, or across ranks when launched with `torchrun`;
3. **assembly** of the incubated stages into the target (`assemble`) and end-to-end fine-tuning
   (`finetune`).

`train_incubation(target, data, config, train, meta=meta)` runs the three phases and returns a `Run`.
Taught in `tutorials/03_deep_incubation.ipynb`. `python -m modlearn.incubation --demo --out FILE`
runs a small incubation; under `python -m torch.distributed.run --nproc_per_node 2` rank r
incubates stages r, r + world, ... (gloo on CPU, NCCL on GPU).

The files, one concern each: `config` (settings, one phase's `fit`), `staged` (stages, pairs),
`hybrid` (hybrids, one incubation), `pool` (worker processes), `cpus` (when processes pay off),
`ranks` (torchrun), `method` (`DeepIncubation`), `train` (the entry point, comparisons),
`figures`, `demo` (the command line).
"""

from .config import CosineDecay, IncubationConfig, paper_train
from .cpus import OtherLoad, processes_pay_off
from .demo import demo_problem
from .figures import plot_budget_curves, plot_hybrids, plot_incubation, plot_stage_gradients
from .hybrid import build_hybrid, frozen_copy, incubate_stage, stage_gradients
from .method import DeepIncubation
from .pool import POOL_DISPATCH_S, WORKER_START_S, close_worker_pools, worker_start_s
from .staged import StagedModel, check_compatible, default_meta, make_pair, split_stages
from .train import (
    IncubationExtras,
    incubation_vs_e2e,
    low_data,
    same_weights,
    time_incubation,
    train_incubation,
)

__all__ = [
    "POOL_DISPATCH_S",
    "WORKER_START_S",
    "CosineDecay",
    "DeepIncubation",
    "IncubationConfig",
    "IncubationExtras",
    "OtherLoad",
    "StagedModel",
    "build_hybrid",
    "check_compatible",
    "close_worker_pools",
    "default_meta",
    "demo_problem",
    "frozen_copy",
    "incubate_stage",
    "incubation_vs_e2e",
    "low_data",
    "make_pair",
    "paper_train",
    "plot_budget_curves",
    "plot_hybrids",
    "plot_incubation",
    "plot_stage_gradients",
    "processes_pay_off",
    "same_weights",
    "split_stages",
    "stage_gradients",
    "time_incubation",
    "train_incubation",
    "worker_start_s",
]
