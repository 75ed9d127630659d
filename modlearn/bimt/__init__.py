"""Brain-Inspired Modular Training (BIMT).

Liu, Gan & Tegmark, "Seeing is Believing: Brain-Inspired Modular Training for Mechanistic
Interpretability", arXiv 2305.08746 (Entropy 26(1):41, 2024); reference code KindXiaoming/BIMT.

Neurons get positions in space; every weight pays for its length,
`CC = sum_l sum_ij |W_ij| (A d_ij + l0) [+ sum_i |b_i| l0]`, with `d_ij` the horizontal (1-D) or
Manhattan (2-D) distance and `l0` the layer spacing; the loss is `task + lam * CC` with a
piecewise-constant lambda schedule, and every N steps neurons swap places when that shortens the
wires. A swap permutes weights (and the tracked input/output order), so the function is unchanged.
Everything trains through `modlearn.train.fit`: the cost is an objective, schedule and swaps are
hooks. Introduced in `tutorials/06_bimt.ipynb`.

    run = bimt.train_bimt(bimt.BioMLP([4, 20, 20, 2]), data)   # or bimt.from_mlp(your_mlp)
    run.model, run.history, run.extras.swaps

Files, one concern each: `geometry` (sites, distances), `model` (`BioMLP`, the model contract),
`convert` (`from_mlp`, `to_mlp`), `config` (`BIMTConfig`, `paper_train`), `objective` (connection
cost, lambda schedule), `swaps` (swap gains, rounds, checks), `movie` (`Snapshots`), `metrics`
(wire length, modularity, ...), `train` (`train_bimt`, `run_ablation`).
"""

from .config import MODE_NAMES, MODES, REDUCTIONS, BIMTConfig, paper_train
from .convert import from_mlp, mlp_layers, to_mlp
from .geometry import (
    GEOMETRIES,
    circle_positions,
    grid_positions,
    layer_folds,
    layer_sites,
    pairwise_distance,
    row_positions,
)
from .metrics import (
    abs_weight_graph,
    bimt_metrics,
    layout_wire_length,
    newman_modularity,
    output_subgraphs,
    shared_hidden_neurons,
    sparsity,
    strong_edges,
    strong_fraction,
    weights_modularity,
    wire_length,
)
from .model import BioMLP, bio_mlp
from .movie import Snapshots
from .objective import (
    LambdaSchedule,
    bimt_objective,
    connection_cost,
    lambda_at,
    layer_scales,
    task_objective,
)
from .swaps import (
    SwapHook,
    brute_force_gains,
    importance,
    optimise_layout,
    placement_costs,
    swap_gains,
    swap_round,
    swap_sites,
    time_swap_round,
    verify_swaps,
)
from .train import BIMTExtras, bimt_hooks, run_ablation, train_bimt

__all__ = [
    "GEOMETRIES",
    "MODES",
    "MODE_NAMES",
    "REDUCTIONS",
    "BIMTConfig",
    "BIMTExtras",
    "BioMLP",
    "LambdaSchedule",
    "Snapshots",
    "SwapHook",
    "abs_weight_graph",
    "bimt_hooks",
    "bimt_metrics",
    "bimt_objective",
    "bio_mlp",
    "brute_force_gains",
    "circle_positions",
    "connection_cost",
    "from_mlp",
    "grid_positions",
    "importance",
    "lambda_at",
    "layer_folds",
    "layer_scales",
    "layer_sites",
    "layout_wire_length",
    "mlp_layers",
    "newman_modularity",
    "optimise_layout",
    "output_subgraphs",
    "pairwise_distance",
    "paper_train",
    "placement_costs",
    "row_positions",
    "run_ablation",
    "shared_hidden_neurons",
    "sparsity",
    "strong_edges",
    "strong_fraction",
    "swap_gains",
    "swap_round",
    "swap_sites",
    "task_objective",
    "time_swap_round",
    "to_mlp",
    "train_bimt",
    "verify_swaps",
    "weights_modularity",
    "wire_length",
]
