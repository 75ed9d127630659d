"""One model, every method, every metric: which kind of modularity, at what cost (notebook 09).

`train_all` trains one architecture (`model_factory()`, an MLP of 4 blocks in the notebook) with every
method in `METHODS` for the same number of optimizer steps and seeds; `score` measures each trained
model with every metric in `METRICS`; `rank_correlations` asks whether the
metrics agree (Spearman's rho across all trained models). Each entry calls the method's or the
metric's own library function, so the numbers are those of the notebook that introduced it.

A learner adds a method or a metric with one entry:

    def train_plain(model_factory, data, steps, seed):  # the loop alone, as a template
        model = fresh_model(model_factory, seed)
        _, seconds = timed(lambda: fit(model, data, step_budget(steps, seed)))
        return model, seconds

    METHODS["plain"] = train_plain
    METRICS["dead units"] = Metric(lambda model, data: ..., higher_is_better=False)

Weight metrics read `weight_layers(model)`: the Linear layers of the model's blocks (the head and
NeMo's mask generators excluded), so a Forward-Forward classifier, which has no head, is read alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import torch
import torch.nn as nn

from .bimt import weights_modularity
from .cluster import (
    ClusterConfig,
    cross_cluster_ablation,
    model_clusterability,
    model_coclusters,
    train_cluster,
)
from .data import Dataset
from .env import seed_everything
from .local import LocalConfig, train_local
from .nemo import MaskGenerator, ModularConfig, train_nemo
from .train import CrossEntropy, Regularized, TrainConfig, evaluate, fit
from .validate import check_choice, check_int, check_type

T = TypeVar("T")
K = 4
"""Clusters per layer for clusterability and the cross-cluster cut (the modules of notebook 09)."""
L1_WEIGHT = 1e-4
"""lambda of the L1 baseline: `task + lambda * sum |W|` over the blocks' Linear weights."""


@dataclass
class Trained:
    """One training run of `train_all`: the model to measure and the training wall-clock."""

    method: str
    seed: int
    model: nn.Module
    seconds: float


@dataclass(frozen=True)
class Metric:
    """`measure(model, data) -> float`, and whether a larger value is the better (more modular) one."""

    measure: Callable[[nn.Module, Dataset], float]
    higher_is_better: bool


# --------------------------------------------------------------------------- methods


ModelFactory = Callable[[], nn.Module]
Method = Callable[[ModelFactory, Dataset, int, int], tuple[nn.Module, float]]


def fresh_model(model_factory: ModelFactory, seed: int) -> nn.Module:
    """`model_factory()` after seeding, so every method starts from the same weights for a seed."""
    seed_everything(seed)
    return model_factory()


def step_budget(steps: int, seed: int) -> TrainConfig:
    """The loop's config for a budget of `steps` optimizer steps."""
    return TrainConfig(epochs=None, max_steps=steps, seed=seed)


def timed(train: Callable[[], T]) -> tuple[T, float]:
    """What `train()` returns, and the seconds it took."""
    start = time.perf_counter()
    result = train()
    return result, time.perf_counter() - start


def local_method(mode: str) -> Method:
    """`local.train_local` with `mode` (one module per block); greedy spends `steps / K` per module,
    so that every method takes the same number of optimizer steps. The trained model is returned,
    Forward-Forward's goodness classifier (over the model's blocks) for `"ff"`."""

    def train(model_factory: ModelFactory, data: Dataset, steps: int, seed: int) -> tuple[nn.Module, float]:
        model = fresh_model(model_factory, seed)
        per_module = max(1, steps // len(model.blocks)) if mode == "greedy" else steps
        run, seconds = timed(
            lambda: train_local(model, data, LocalConfig(mode=mode), step_budget(per_module, seed))
        )
        return (run.classifier if mode == "ff" else run.model), seconds

    return train


def modular_method(method: str) -> Method:
    """`nemo.train_nemo` with `method` (`"mwt"` or `"nemo"`): the masked model, masks on."""

    def train(model_factory: ModelFactory, data: Dataset, steps: int, seed: int) -> tuple[nn.Module, float]:
        model = fresh_model(model_factory, seed)
        (masked, _), seconds = timed(
            lambda: train_nemo(model, data, ModularConfig(method=method), step_budget(steps, seed))
        )
        return masked, seconds

    return train


def train_clusterability(
    model_factory: ModelFactory, data: Dataset, steps: int, seed: int
) -> tuple[nn.Module, float]:
    """E2E + clusterability loss (`cluster.train_cluster`, k = `K`, on the blocks' layers)."""
    model = fresh_model(model_factory, seed)
    config = ClusterConfig(k=K, layers=tuple(weight_layers(model)), seed=seed)
    _, seconds = timed(lambda: train_cluster(model, data, config, step_budget(steps, seed)))
    return model, seconds


def l1_penalty(model: nn.Module) -> torch.Tensor:
    """`sum |W|` over `weight_layers(model)`."""
    return sum(model.get_submodule(name).weight.abs().sum() for name in weight_layers(model))


def train_l1(model_factory: ModelFactory, data: Dataset, steps: int, seed: int) -> tuple[nn.Module, float]:
    """E2E with an L1 penalty (`Regularized`, lambda = `L1_WEIGHT`) through `fit`."""
    model = fresh_model(model_factory, seed)
    objective = Regularized(CrossEntropy(), l1_penalty, L1_WEIGHT, name="l1")
    _, seconds = timed(lambda: fit(model, data, step_budget(steps, seed), objective=objective))
    return model, seconds


METHODS: dict[str, Method] = {
    "e2e": local_method("e2e"),
    "greedy": local_method("greedy"),
    "dgl": local_method("dgl"),
    "ff": local_method("ff"),
    "cluster": train_clusterability,
    "l1": train_l1,
    "mwt": modular_method("mwt"),
    "nemo": modular_method("nemo"),
}


# --------------------------------------------------------------------------- metrics


def weight_layers(model: nn.Module) -> list[str]:
    """Names of the Linear layers inside `model`'s blocks (`blocks` or, Forward-Forward, `layers`),
    in order; NeMo's mask generators are skipped (their weights compute masks, not features)."""
    generated = {id(m) for g in model.modules() if isinstance(g, MaskGenerator) for m in g.modules()}
    names = [
        name
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and id(m) not in generated and name.split(".")[0] in ("blocks", "layers")
    ]
    if not names:
        raise ValueError(
            f"score(model=<{type(model).__name__}>): model must have Linear layers in `blocks` "
            "(or `layers`); build it with ml.make_model('mlp', ...)"
        )
    return names


def accuracy_on_test(model: nn.Module, data: Dataset) -> float:
    """Accuracy on `data.test` (`train.evaluate`)."""
    return evaluate(model, data)["acc"]


def clusterability_k(model: nn.Module, data: Dataset) -> float:
    """Mean clusterability C over `weight_layers`, co-clusters (k = `K`) fitted to the final weights."""
    clusters = model_coclusters(model, K, weight_layers(model))
    with torch.no_grad():
        return float(model_clusterability(model, clusters))


def cut_cost(model: nn.Module, data: Dataset) -> float:
    """Test accuracy lost by zeroing every cross-cluster weight (`cluster.cross_cluster_ablation`)."""
    return cross_cluster_ablation(model, model_coclusters(model, K, weight_layers(model)), data)["drop"]


def newman_q(model: nn.Module, data: Dataset) -> float:
    """Newman Q of the |W| graph of `weight_layers` (`bimt.weights_modularity`)."""
    return weights_modularity([model.get_submodule(name).weight for name in weight_layers(model)])


METRICS: dict[str, Metric] = {
    "test accuracy": Metric(accuracy_on_test, higher_is_better=True),
    "clusterability C": Metric(clusterability_k, higher_is_better=True),
    "cut cost": Metric(cut_cost, higher_is_better=False),
    "Newman Q": Metric(newman_q, higher_is_better=True),
}


# --------------------------------------------------------------------------- the scoreboard


def _checked_names(
    name: str, given: Sequence[str] | None, known: Mapping[str, object], owner: str
) -> list[str]:
    """`given` (default: every key of `known`), each checked against `known`'s keys."""
    if given is None:
        return list(known)
    check_type(
        name, given, (list, tuple), owner=owner, hint=f"pass a list of names such as {list(known)[:2]}"
    )
    return [check_choice(name, entry, list(known), owner=owner) for entry in given]


def train_all(
    model_factory: ModelFactory,
    data: Dataset,
    steps: int,
    seeds: Sequence[int] = (0, 1, 2),
    methods: Sequence[str] | None = None,
) -> dict[str, Trained]:
    """Train `model_factory()` with each method in `methods` (default: all of `METHODS`) for `steps`
    optimizer steps per seed. Keys are `"<method>/<seed>"`, e.g. `"dgl/1"`."""
    owner = "train_all"
    check_type("data", data, Dataset, owner=owner, hint="pass a Dataset, e.g. ml.load_dataset('digits')")
    steps = check_int("steps", steps, 1, owner=owner)
    seeds = [check_int("seeds", seed, 0, owner=owner) for seed in seeds]
    runs = {}
    for method in _checked_names("methods", methods, METHODS, owner):
        for seed in seeds:
            model, seconds = METHODS[method](model_factory, data, steps, seed)
            runs[f"{method}/{seed}"] = Trained(method, seed, model, seconds)
    return runs


def score(
    models: Mapping[str, nn.Module], data: Dataset, metrics: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """`{model name: {metric name: value}}` for every model and every metric in `metrics`
    (default: all of `METRICS`)."""
    check_type("data", data, Dataset, owner="score", hint="pass a Dataset, e.g. ml.load_dataset('digits')")
    names = _checked_names("metrics", metrics, METRICS, "score")
    return {
        label: {metric: float(METRICS[metric].measure(model, data)) for metric in names}
        for label, model in models.items()
    }


def rank_correlations(scores: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Spearman's rho between every pair of metrics across the models of `scores` (`score`'s output):
    `{metric: {metric: rho}}`, 1 on the diagonal; NaN where a metric is constant across the models."""
    from scipy.stats import spearmanr

    if len(scores) < 2:
        raise ValueError(
            f"rank_correlations(scores=<{len(scores)} model(s)>): scores must hold at least 2 models; "
            "score more models (e.g. more seeds)"
        )
    names = list(next(iter(scores.values())))
    columns = {metric: [row[metric] for row in scores.values()] for metric in names}
    return {
        a: {b: 1.0 if a == b else float(spearmanr(columns[a], columns[b]).statistic) for b in names}
        for a in names
    }
