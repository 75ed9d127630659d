"""The scoreboard's metrics: each calls the library function of the notebook that introduced it,
so the numbers are that notebook's; `COSTS` read what a training run cost."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from .. import bimt
from ..circuits import edges_for_faithfulness
from ..cluster import cross_cluster_ablation, model_clusterability, model_coclusters
from ..data import Dataset
from ..train import evaluate
from .methods import MODULES
from .reading import circuit_problem, matched_module, weight_layers, weight_tensors

FAITHFULNESS = 0.95
TAUS = (3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 0.0)
"""ACDC thresholds tried, largest (smallest circuit) first, until one reaches `FAITHFULNESS`."""


@dataclass(frozen=True)
class Metric:
    """`measure(model, data) -> float`, and whether a larger value is the better (more modular) one."""

    measure: Callable[[nn.Module, Dataset], float]
    higher_is_better: bool


def accuracy_on_test(model: nn.Module, data: Dataset) -> float:
    """Accuracy on `data.test` (`train.evaluate`)."""
    return evaluate(model, data)["acc"]


def clusterability_k(model: nn.Module, data: Dataset) -> float:
    """Mean clusterability C over `weight_layers`, co-clusters (k = `MODULES`) fitted to the final weights."""
    clusters = model_coclusters(model, MODULES, weight_layers(model))
    with torch.no_grad():
        return float(model_clusterability(model, clusters))


def cut_cost(model: nn.Module, data: Dataset) -> float:
    """Test accuracy lost by zeroing every cross-cluster weight (`cluster.cross_cluster_ablation`)."""
    return cross_cluster_ablation(model, model_coclusters(model, MODULES, weight_layers(model)), data)["drop"]


def newman_q(model: nn.Module, data: Dataset) -> float:
    """Newman Q of the |W| graph of `weight_layers` (`bimt.weights_modularity`)."""
    return bimt.weights_modularity(weight_tensors(model))


def wire_length_after_swaps(model: nn.Module, data: Dataset) -> float:
    """|W|-weighted mean wire length on a 1-D layout after every model's neurons are swapped to
    shorten it (`bimt.layout_wire_length`), so BIMT's trained layout is no advantage."""
    return bimt.layout_wire_length(weight_tensors(model))


def module_size(model: nn.Module, data: Dataset) -> float:
    """Weight retention of the smallest `CLASSES` module at matched accuracy (`matched_module`)."""
    return matched_module(model, data)["weight_retention"]


def circuit_edges(model: nn.Module, data: Dataset) -> float:
    """ACDC edges needed for `FAITHFULNESS` on class `CIRCUIT_CLASS` (`circuits.edges_for_faithfulness`);
    NaN for Forward-Forward (no output neuron to explain)."""
    problem = circuit_problem(model, data)
    return math.nan if problem is None else float(edges_for_faithfulness(problem, FAITHFULNESS, TAUS).edges)


SCOREBOARD_METRICS: dict[str, Metric] = {
    "test accuracy": Metric(accuracy_on_test, higher_is_better=True),
    "clusterability C": Metric(clusterability_k, higher_is_better=True),
    "cut cost": Metric(cut_cost, higher_is_better=False),
    "Newman Q": Metric(newman_q, higher_is_better=True),
    "wire length": Metric(wire_length_after_swaps, higher_is_better=False),
    "module size": Metric(module_size, higher_is_better=False),
    "circuit edges": Metric(circuit_edges, higher_is_better=False),
}


COSTS: dict[str, Metric] = {
    "train seconds": Metric(lambda run, data: run.seconds, higher_is_better=False),
    "activation MB": Metric(lambda run, data: run.activation_bytes / 2**20, higher_is_better=False),
}
"""What a training run cost (read from `BoardRun`, not from the model)."""


def directions() -> dict[str, bool]:
    """Whether a larger value is the better one, for every metric and cost."""
    return {name: m.higher_is_better for name, m in {**SCOREBOARD_METRICS, **COSTS}.items()}
