"""One model, every method, every metric: which kind of modularity, at what cost (notebook 09).

`train_all` trains one architecture (`scoreboard_mlp`: an MLP of 5 `Linear -> ReLU` blocks and a head,
cut into `MODULES` = 4 modules) with every method in `METHODS`, for the same number of optimizer
steps (`budget`) and seeds; `score` measures each trained model with every metric in `METRICS`
plus the two costs of its training (`COSTS`); `summarize` gives mean and sd over seeds, and
`rank_correlations` asks whether the metrics agree (Spearman's rho across all trained models).
Each entry calls the method's or the metric's own library function, so the numbers are those of
the notebook that introduced it.

A learner adds a method or a metric with one entry:

    def train_plain(model_factory, data, train):  # the loop alone, as a template
        model = fresh_model(model_factory, train.seed)
        _, seconds = timed(lambda: fit(model, data, train))
        return Outcome(model, seconds, step_memory(model, CrossEntropy(), data, train))

    METHODS["plain"] = train_plain
    METRICS["dead units"] = Metric(lambda model, data: ..., higher_is_better=False)

Every trained model is an `ml.models.MLP` (BIMT's and L1's `BioMLP`s are folded back with
`bimt.to_mlp`), a masked MLP (MwT, NeMo) or Forward-Forward's goodness classifier over the MLP's
blocks. Weight metrics read `weight_layers(model)`: the Linear layers of the blocks (the head and
the mask generators excluded), so the three kinds are read alike.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import torch
import torch.nn as nn

from . import bimt
from .circuits import LinearNet, PatchingProblem, class_batches, edges_for_faithfulness
from .cluster import (
    ClusterabilityLoss,
    ClusterConfig,
    cross_cluster_ablation,
    model_clusterability,
    model_coclusters,
    train_cluster,
)
from .data import Dataset, Split
from .env import seed_everything
from .incubation import IncubationConfig, StagedModel, train_incubation
from .local import ForwardForwardNet, LocalConfig, activation_bytes, step_activation_bytes, train_local
from .models import MLP
from .nemo import (
    MaskedLinear,
    MaskGenerator,
    ModularConfig,
    class_unit_masks,
    module_units,
    subtask_accuracy,
    train_nemo,
)
from .train import CrossEntropy, Objective, TrainConfig, evaluate, fit
from .validate import check_choice, check_int, check_type

T = TypeVar("T")
MODULES = 4
"""Modules of the scoreboard MLP: DGL's and greedy's modules, Deep Incubation's stages, the k of
clusterability and of the cross-cluster cut."""
K = MODULES
CLASSES = (3, 5, 8)
"""The class set whose module size is measured (notebook 05's module)."""
CIRCUIT_CLASS = 3
"""The class whose ACDC circuit is measured (clean inputs of it, corrupted inputs of other classes)."""
FAITHFULNESS = 0.95
TAUS = (3e-2, 1e-2, 3e-3, 1e-3, 3e-4, 1e-4, 0.0)
"""ACDC thresholds tried, largest (smallest circuit) first, until one reaches `FAITHFULNESS`."""
THRESHOLDS = (0.99, 0.95, 0.9, 0.8, 0.7, 0.5, 0.3, 0.2, 0.1, 0.05, 0.0)
"""Module extraction thresholds tried (NeMo's rule), largest (smallest module) first."""
TOLERANCE = 0.02
"""Matched accuracy: a module counts when its sub-task accuracy is within this of its full model's."""
CIRCUIT_BATCH = 32
BIMT_SETTINGS = dict(lam=3e-4, weight_factor=2.0, swap_every=200, top_k=10, penalize_last=False)
"""BIMT and its L1 ablation on a classifier as notebook 07 trains them (A = 2, swaps every 200 steps,
top 10, the head not penalized), lambda scaled down for this MLP's 5x more weights (sum cost)."""
FF_LOOP = dict(lr=0.03, batch_size=64)
"""Forward-Forward's loop settings (the reference code's, as notebook 02)."""


@dataclass
class Outcome:
    """What a method returns: the trained model, its training wall-clock and the activation bytes
    one of its training steps holds at its peak (`local.step_activation_bytes`)."""

    model: nn.Module
    seconds: float
    activation_bytes: int


@dataclass
class Trained(Outcome):
    """One training run of `train_all`."""

    method: str = ""
    seed: int = 0


@dataclass(frozen=True)
class Metric:
    """`measure(model, data) -> float`, and whether a larger value is the better (more modular) one."""

    measure: Callable[[nn.Module, Dataset], float]
    higher_is_better: bool


# --------------------------------------------------------------------------- the model and the budget


ModelFactory = Callable[[], nn.Module]
Method = Callable[[ModelFactory, Dataset, TrainConfig], Outcome]


def scoreboard_mlp(data: Dataset, width: int = 64, depth: int = MODULES + 1) -> MLP:
    """The scoreboard's architecture for `data`: an MLP of `depth` hidden blocks of `width`, which
    cuts into `MODULES` modules: greedy and DGL split the blocks as evenly as they go (0 | 1 | 2-3 |
    4 by default), Deep Incubation's stage 0 also owns the input block (0-1 | 2 | 3 | 4 + head), as
    the paper's owns the patch embedding."""
    return MLP(data.input_shape, hidden=(width,) * depth, num_classes=data.num_classes)


def budget(steps: int, seed: int, lr: float = 3e-3, batch_size: int = 128) -> TrainConfig:
    """The loop's config shared by every method: `steps` optimizer steps (Adam), no progress bar."""
    return TrainConfig(epochs=None, max_steps=steps, seed=seed, lr=lr, batch_size=batch_size, progress=False)


def fresh_model(model_factory: ModelFactory, seed: int) -> nn.Module:
    """`model_factory()` after seeding, so every method starts from the same weights for a seed."""
    seed_everything(seed)
    return model_factory()


def timed(train: Callable[[], T]) -> tuple[T, float]:
    """What `train()` returns, and the seconds it took."""
    start = time.perf_counter()
    result = train()
    return result, time.perf_counter() - start


def first_batch(data: Dataset, train: TrainConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The first `train.batch_size` training samples, on the CPU (the memory probe's batch)."""
    return data.train.x[: train.batch_size].cpu(), data.train.y[: train.batch_size].cpu()


def step_memory(model: nn.Module, objective: Objective, data: Dataset, train: TrainConfig) -> int:
    """Peak activation bytes of one training step of `objective` on a CPU copy of `model`."""
    return step_activation_bytes(copy.deepcopy(model).cpu(), objective, first_batch(data, train))


# --------------------------------------------------------------------------- methods


def train_e2e(model_factory: ModelFactory, data: Dataset, config: TrainConfig) -> Outcome:
    """The baseline: the plain loop (`fit`), one global backward pass per step."""
    model = fresh_model(model_factory, config.seed)
    _, seconds = timed(lambda: fit(model, data, config))
    return Outcome(model, seconds, step_memory(model, CrossEntropy(), data, config))


def local_method(mode: str) -> Method:
    """`local.train_local` with `mode` and `MODULES` modules. Greedy spends `max_steps / MODULES`
    per module, so every method takes the same number of optimizer steps. The trained model is
    returned, Forward-Forward's goodness classifier (over the model's blocks) for `"ff"`."""

    def train(model_factory: ModelFactory, data: Dataset, config: TrainConfig) -> Outcome:
        model = fresh_model(model_factory, config.seed)
        local = LocalConfig(mode=mode, num_modules=None if mode == "ff" else MODULES)
        per_module = max(1, config.max_steps // MODULES) if mode == "greedy" else config.max_steps
        loop = replace(config, max_steps=per_module, **(FF_LOOP if mode == "ff" else {}))
        run, seconds = timed(lambda: train_local(model, data, local, loop))
        memory = activation_bytes(
            copy.deepcopy(run.model).cpu(), first_batch(data, config), local, data.num_classes
        )
        return Outcome(run.classifier if mode == "ff" else run.model, seconds, memory)

    return train


def meta_model(target: MLP) -> StagedModel:
    """Deep Incubation's small meta model for the scoreboard MLP `target`: the target's `MODULES`
    stage interfaces with the fewest layers, the input layer alone in stage 0 and the head alone in
    the last stage (the target's first and last stages hold one hidden block more)."""
    width, stages = target.widths[1], []
    for s in range(MODULES):
        layers: list[nn.Module] = [nn.Flatten(), nn.Linear(target.widths[0], width)] if s == 0 else []
        if 0 < s < MODULES - 1:
            layers.append(nn.Linear(width, width))
        if s < MODULES - 1:
            layers.append(nn.ReLU())
        else:
            layers.append(nn.Linear(width, target.widths[-1]))
        stages.append(nn.Sequential(*layers))
    return StagedModel(stages)


def train_deep_incubation(model_factory: ModelFactory, data: Dataset, config: TrainConfig) -> Outcome:
    """`incubation.train_incubation` of the MLP, cut into `MODULES` stages, with `meta_model`, in this
    process. The paper's phase ratio 300 : 100 (each of the 4 incubations) : 100 (fine-tune)
    splits `max_steps`, so the method takes as many optimizer steps as the others. The activation
    peak is the largest of its phases (fine-tuning is end to end)."""
    target = fresh_model(model_factory, config.seed)
    meta = meta_model(target)
    unit = max(1, config.max_steps // 8)
    phases = IncubationConfig(
        stages=MODULES, meta_steps=3 * unit, incubation_steps=unit, finetune_steps=unit, workers=1
    )
    (assembled, inc), seconds = timed(
        lambda: train_incubation(target, data, phases, config, meta=meta, parallel=False)
    )
    memory = max(
        [step_memory(inc.meta, CrossEntropy(), data, config)]
        + [step_memory(inc.hybrid(i), CrossEntropy(), data, config) for i in range(MODULES)]
        + [step_memory(assembled, CrossEntropy(), data, config)]
    )
    return Outcome(assembled, seconds, memory)


def train_clusterability(model_factory: ModelFactory, data: Dataset, config: TrainConfig) -> Outcome:
    """E2E for half the steps, then the clusterability loss (`cluster.train_cluster`, k = `K`,
    lambda 40) with co-clusters fitted to those weights for the other half (as the paper fits
    them to a trained model)."""
    model = fresh_model(model_factory, config.seed)
    half = replace(config, max_steps=max(1, config.max_steps // 2))
    layers = tuple(weight_layers(model))

    def run() -> dict:
        fit(model, data, half)
        _, clusters = train_cluster(model, data, ClusterConfig(k=K, layers=layers, seed=config.seed), half)
        return clusters

    clusters, seconds = timed(run)
    return Outcome(model, seconds, step_memory(model, ClusterabilityLoss(clusters), data, config))


def bimt_method(mode: str) -> Method:
    """`bimt.train_bimt` with `mode` (`"bimt"`, or its `"l1"` ablation) on a 1-D `BioMLP` holding
    the MLP's initial weights (`bimt.from_mlp`), folded back into an MLP (`bimt.to_mlp`)."""

    def train(model_factory: ModelFactory, data: Dataset, config: TrainConfig) -> Outcome:
        model = bimt.from_mlp(fresh_model(model_factory, config.seed))
        settings = bimt.BIMTConfig(mode=mode, steps=config.max_steps, **BIMT_SETTINGS)
        _, seconds = timed(lambda: bimt.train_bimt(model, data, settings, config))
        objective = bimt.bimt_objective(model, data, settings)
        return Outcome(bimt.to_mlp(model), seconds, step_memory(model, objective, data, config))

    return train


def modular_method(method: str) -> Method:
    """`nemo.train_nemo` with `method` (`"mwt"` or `"nemo"`, the papers' defaults): the masked model."""

    def train(model_factory: ModelFactory, data: Dataset, config: TrainConfig) -> Outcome:
        settings = ModularConfig(method=method)
        (masked, _), seconds = timed(
            lambda: train_nemo(fresh_model(model_factory, config.seed), data, settings, config)
        )
        return Outcome(masked, seconds, step_memory(masked, settings.objective(), data, config))

    return train


METHODS: dict[str, Method] = {
    "e2e": train_e2e,
    "greedy": local_method("greedy"),
    "dgl": local_method("dgl"),
    "ff": local_method("ff"),
    "incubation": train_deep_incubation,
    "cluster": train_clusterability,
    "l1": bimt_method("l1"),
    "bimt": bimt_method("bimt"),
    "mwt": modular_method("mwt"),
    "nemo": modular_method("nemo"),
}
NAMES = {
    "e2e": "E2E",
    "greedy": "greedy",
    "dgl": "DGL",
    "ff": "Forward-Forward",
    "incubation": "Deep Incubation",
    "cluster": "E2E + clusterability",
    "l1": "L1",
    "bimt": "BIMT",
    "mwt": "MwT",
    "nemo": "NeMo",
}


# --------------------------------------------------------------------------- reading a trained model


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


def weight_tensors(model: nn.Module) -> list[torch.Tensor]:
    """The weights of `weight_layers(model)`, in order: `(out, in)` each."""
    return [model.get_submodule(name).weight for name in weight_layers(model)]


def _blocks(model: nn.Module) -> nn.ModuleList:
    """The hidden blocks: `layers` of a Forward-Forward classifier, `blocks` otherwise."""
    return model.layers if isinstance(model, ForwardForwardNet) else model.blocks


@torch.no_grad()
def unit_activity(model: nn.Module, split: Split) -> dict[str, torch.Tensor]:
    """Per hidden block, whether each unit's output is non-zero on each sample: name -> bool
    `(n, units)`. For MwT/NeMo a unit is on only where its mask is on; Forward-Forward reads each
    sample with its own label written in (its positive pass)."""
    device = next(model.parameters()).device
    x, y = split.x.to(device), split.y.to(device)
    model.eval()
    h, activity = x, {}
    if isinstance(model, ForwardForwardNet):
        h = model.overlay(x, y)
    for i, block in enumerate(_blocks(model)):
        h = ForwardForwardNet.layer_step(block, h) if isinstance(model, ForwardForwardNet) else block(h)
        activity[f"block{i}"] = (h.flatten(1) != 0).cpu()
    return activity


@contextlib.contextmanager
def units_kept(model: nn.Module, keep: Mapping[str, torch.Tensor]) -> Iterator[nn.Module]:
    """`model` with every hidden unit outside `keep` (`unit_activity`'s names -> bool `(units,)`)
    switched off: the module cut out of it, simulated in place."""
    handles = []
    for i, block in enumerate(_blocks(model)):
        scale = keep[f"block{i}"].float().to(next(model.parameters()).device)
        handles.append(block.register_forward_hook(lambda _m, _i, out, s=scale: out * s))
    try:
        yield model
    finally:
        for handle in handles:
            handle.remove()


def retained_weights(keep: Mapping[str, torch.Tensor], widths: Sequence[int]) -> float:
    """Per-block weight retention of a module (NeMo's size): weights whose two endpoints are kept,
    over all the blocks' weights; `widths` are the layer widths, input first, the inputs all kept."""
    kept = [widths[0]] + [int(k.sum()) for k in keep.values()]
    total = sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))
    return sum(a * b for a, b in zip(kept[:-1], kept[1:], strict=True)) / total


def module_sweep(
    model: nn.Module,
    data: Dataset,
    classes: Sequence[int] = CLASSES,
    thresholds: Sequence[float] = THRESHOLDS,
) -> list[dict[str, float]]:
    """NeMo's extraction applied to the units' outputs: for each threshold, the module of `classes`
    (union of the classes' units that are on for at least that fraction of their training samples,
    `nemo.class_unit_masks`), its weight retention, and its training and test accuracy on the
    sub-task, cut without fine-tuning (the papers fine-tune; the scoreboard measures the network)."""
    activity = unit_activity(model, data.train)
    weights = weight_tensors(model)
    widths = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    points = []
    for threshold in thresholds:
        keep = module_units(class_unit_masks(activity, data.train.y, data.num_classes, threshold), classes)
        with units_kept(model, keep):
            points.append(
                {
                    "threshold": threshold,
                    "weight_retention": retained_weights(keep, widths),
                    "train_acc": subtask_accuracy(model, data.train, classes, restrict=True),
                    "test_acc": subtask_accuracy(model, data.test, classes, restrict=True),
                }
            )
    return points


def matched_module(model: nn.Module, data: Dataset) -> dict[str, float]:
    """The smallest module of `CLASSES` whose training sub-task accuracy is within `TOLERANCE` of
    the full model's (matched accuracy), from `module_sweep` (threshold 0 keeps every unit)."""
    target = subtask_accuracy(model, data.train, CLASSES, restrict=True) - TOLERANCE
    reaching = [p for p in module_sweep(model, data) if p["train_acc"] >= target]
    return min(reaching, key=lambda p: p["weight_retention"])


def masked_linear_net(model: nn.Module) -> LinearNet:
    """A masked MLP (MwT/NeMo) as circuit discovery sees it: its Linear weights, and its masks as
    gates (`circuits.LinearNet`), computed by the mask generators on the clean or corrupted inputs."""
    layers = [next(m for m in block if isinstance(m, (nn.Linear, MaskedLinear))) for block in model.blocks]
    linears = [m.layer if isinstance(m, MaskedLinear) else m for m in layers] + [model.head]
    weights = [lin.weight.detach().double() for lin in linears]
    device = weights[0].device

    def gates(x: torch.Tensor) -> list[torch.Tensor | None]:
        found, h = [], x.to(device).flatten(1)
        for block, layer in zip(model.blocks, layers, strict=True):
            found.append(layer.generator(h) * layer.unit_filter if isinstance(layer, MaskedLinear) else None)
            h = block(h)
        return found

    return LinearNet(
        weights,
        [lin.bias.detach().double() for lin in linears],
        lambda z: torch.relu(z),
        lambda x: x.to(device).flatten(1).double(),
        torch.arange(weights[-1].shape[0], device=device),
        gates,
    )


def circuit_problem(model: nn.Module, data: Dataset, label: int = CIRCUIT_CLASS, n: int = CIRCUIT_BATCH):
    """ACDC's problem for class `label` (notebook 07): `n` clean test inputs of it, `n` corrupted ones
    of other classes, the squared gap of logit `label`. None for Forward-Forward, whose class score
    (the goodness of every layer) is no output neuron of an MLP."""
    if isinstance(model, ForwardForwardNet):
        return None
    masked = any(isinstance(m, MaskedLinear) for m in model.modules())
    clean, corrupt = class_batches(data.test.x, data.test.y, label, n=n)
    return PatchingProblem(masked_linear_net(model) if masked else model, clean, corrupt, output=label)


# --------------------------------------------------------------------------- metrics


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


METRICS: dict[str, Metric] = {
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
"""What a training run cost (read from `Trained`, not from the model)."""


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
    lr: float = 3e-3,
    verbose: bool = False,
) -> dict[str, Trained]:
    """Train `model_factory()` with each method in `methods` (default: all of `METHODS`) for `steps`
    optimizer steps per seed (`budget(steps, seed, lr)`), after a short untimed warm-up run, so that
    the first method's wall-clock holds no one-time start-up. Keys are `"<method>/<seed>"`, e.g.
    `"dgl/1"`; `verbose` prints a line per run."""
    owner = "train_all"
    check_type("data", data, Dataset, owner=owner, hint="pass a Dataset, e.g. ml.load_dataset('digits')")
    steps = check_int("steps", steps, 1, owner=owner)
    seeds = [check_int("seeds", seed, 0, owner=owner) for seed in seeds]
    names = _checked_names("methods", methods, METHODS, owner)
    fit(model_factory(), data, budget(min(steps, 20), seeds[0], lr))  # warm-up, untimed
    runs = {}
    for method in names:
        for seed in seeds:
            outcome = METHODS[method](model_factory, data, budget(steps, seed, lr))
            runs[f"{method}/{seed}"] = Trained(
                outcome.model, outcome.seconds, outcome.activation_bytes, method, seed
            )
            if verbose:
                print(f"{NAMES.get(method, method):>22} seed {seed}: {outcome.seconds:5.1f} s", flush=True)
    return runs


def score(
    runs: Mapping[str, Trained | nn.Module], data: Dataset, metrics: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """`{name: {metric: value}}` for every run (or bare model) and every metric in `metrics`
    (default: all of `METRICS`, then `COSTS` for `Trained` runs)."""
    check_type("data", data, Dataset, owner="score", hint="pass a Dataset, e.g. ml.load_dataset('digits')")
    names = _checked_names("metrics", metrics, METRICS, "score")
    table = {}
    for label, run in runs.items():
        model = run.model if isinstance(run, Outcome) else run
        row = {metric: float(METRICS[metric].measure(model, data)) for metric in names}
        if isinstance(run, Outcome) and metrics is None:
            row |= {cost: float(metric.measure(run, data)) for cost, metric in COSTS.items()}
        table[label] = row
    return table


def directions() -> dict[str, bool]:
    """Whether a larger value is the better one, for every metric and cost."""
    return {name: m.higher_is_better for name, m in {**METRICS, **COSTS}.items()}


def summarize(scores: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, tuple[float, float]]]:
    """Per method (the part of a `"<method>/<seed>"` key before the slash), per metric: the mean
    and sample sd over its seeds `(mean, sd)` (sd NaN for one seed; NaN values are skipped)."""
    grouped: dict[str, list[Mapping[str, float]]] = {}
    for label, row in scores.items():
        grouped.setdefault(label.split("/")[0], []).append(row)
    summary = {}
    for method, rows in grouped.items():
        summary[method] = {}
        for metric in rows[0]:
            values = [r[metric] for r in rows if not math.isnan(r[metric])]
            mean = float(np.mean(values)) if values else math.nan
            sd = float(np.std(values, ddof=1)) if len(values) > 1 else math.nan
            summary[method][metric] = (mean, sd)
    return summary


def rank_correlations(scores: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Spearman's rho between every pair of metrics across the models of `scores` (`score`'s output),
    each pair over the models where both are defined: `{metric: {metric: rho}}`, 1 on the diagonal;
    NaN where a metric is constant across those models."""
    from scipy.stats import spearmanr

    if len(scores) < 2:
        raise ValueError(
            f"rank_correlations(scores=<{len(scores)} model(s)>): scores must hold at least 2 models; "
            "score more models (e.g. more seeds)"
        )
    names = list(next(iter(scores.values())))
    columns = {metric: np.array([row[metric] for row in scores.values()], dtype=float) for metric in names}

    def rho(a: str, b: str) -> float:
        both = ~(np.isnan(columns[a]) | np.isnan(columns[b]))
        if a == b:
            return 1.0
        if both.sum() < 2:
            return math.nan
        return float(spearmanr(columns[a][both], columns[b][both]).statistic)

    return {a: {b: rho(a, b) for b in names} for a in names}


def normalise(values: Sequence[float], higher_is_better: bool) -> list[float]:
    """`values` scaled to [0, 1] so that 1 is the best of them (min-max, in the metric's direction);
    all 0.5 when they are equal; NaN stays NaN."""
    array = np.asarray(values, dtype=float)
    low, high = np.nanmin(array), np.nanmax(array)
    if not high > low:
        return [math.nan if math.isnan(v) else 0.5 for v in array]
    scaled = (array - low) / (high - low)
    return list(scaled if higher_is_better else 1.0 - scaled)


# --------------------------------------------------------------------------- pictures


def plot_scoreboard(
    summary: Mapping[str, Mapping[str, tuple[float, float]]], metrics: Sequence[str] | None = None
):
    """Methods x metrics: each metric's means min-max normalised across the methods (`normalise`:
    dark = best, grey = not defined), the mean printed in each cell, the direction in the column
    title. Returns the figure."""
    import matplotlib.pyplot as plt

    methods = list(summary)
    metrics = list(metrics or next(iter(summary.values())))
    better = directions()
    means = np.array([[summary[m][k][0] for k in metrics] for m in methods])
    shade = np.array([normalise(means[:, j], better[k]) for j, k in enumerate(metrics)]).T
    fig, ax = plt.subplots(figsize=(1.15 * len(metrics) + 2.2, 0.42 * len(methods) + 1.6))
    cmap = plt.get_cmap("Greens").copy()
    cmap.set_bad("lightgrey")
    ax.imshow(np.ma.masked_invalid(shade), cmap=cmap, vmin=-0.15, vmax=1.15, aspect="auto")
    for i in range(len(methods)):
        for j in range(len(metrics)):
            value = means[i, j]
            text = "n/a" if math.isnan(value) else f"{value:.3g}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7.5, color="black")
    ax.set_xticks(
        range(len(metrics)),
        [f"{k}\n({'higher' if better[k] else 'lower'} is better)" for k in metrics],
        fontsize=7.5,
    )
    ax.set_yticks(range(len(methods)), [NAMES.get(m, m) for m in methods], fontsize=8)
    ax.xaxis.tick_top()
    ax.set_title(
        "scoreboard: mean over seeds; shade = min-max within the column (dark = best, grey = n/a)",
        fontsize=9,
        pad=34,
    )
    fig.tight_layout()
    return fig


def plot_rank_correlations(rho: Mapping[str, Mapping[str, float]]):
    """The Spearman rho matrix between metrics (`rank_correlations`), each metric oriented so that
    +1 means "the two agree on which models are more modular / better". Returns the figure."""
    import matplotlib.pyplot as plt

    names = list(rho)
    better = directions()
    sign = np.array([1.0 if better[k] else -1.0 for k in names])
    matrix = np.array([[rho[a][b] for b in names] for a in names]) * sign[:, None] * sign[None, :]
    fig, ax = plt.subplots(figsize=(0.62 * len(names) + 2.4, 0.55 * len(names) + 1.2))
    image = ax.imshow(matrix, cmap="RdBu", vmin=-1, vmax=1)
    for i in range(len(names)):
        for j in range(len(names)):
            text = "" if math.isnan(matrix[i, j]) else f"{matrix[i, j]:+.2f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    fig.colorbar(image, ax=ax, fraction=0.04, label="agreement (Spearman rho, oriented)")
    ax.set_title("do the metrics agree across all trained models?", fontsize=9)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- reading the scoreboard

SHORT = {
    "test accuracy": "acc",
    "clusterability C": "C",
    "cut cost": "cut",
    "Newman Q": "Q",
    "wire length": "wire",
    "module size": "module",
    "circuit edges": "edges",
    "train seconds": "seconds",
    "activation MB": "memory_mb",
}
"""Short names of the metrics and costs, for recorded values (`<method>_<short>`)."""
WEIGHT_METRICS = ("clusterability C", "cut cost", "Newman Q", "wire length")
"""Metrics that read the weights as a graph (notebooks 04 and 06)."""
FUNCTION_METRICS = ("module size", "circuit edges")
"""Metrics that ask what the network computes with which parts (notebooks 05 and 07)."""


def oriented(rho: Mapping[str, Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """`rank_correlations` with each metric's direction applied: +1 means the two metrics call the
    same models better (more modular), -1 that one's best are the other's worst."""
    better = directions()
    sign = {k: 1.0 if better[k] else -1.0 for k in rho}
    return {a: {b: rho[a][b] * sign[a] * sign[b] for b in rho[a]} for a in rho}


def family_agreement(
    rho: Mapping[str, Mapping[str, float]], first: Sequence[str], second: Sequence[str]
) -> float:
    """Mean oriented rho over the pairs of one metric of `first` and another of `second` (NaN pairs
    skipped): how far the two families of metrics agree on which models are modular."""
    agreement = oriented(rho)
    values = [agreement[a][b] for a in first for b in second if a != b and not math.isnan(agreement[a][b])]
    return float(np.mean(values)) if values else math.nan


def best_method(summary: Mapping[str, Mapping[str, tuple[float, float]]], metric: str) -> str:
    """The method whose mean is the best for `metric` (NaN means skipped)."""
    better = directions()[metric]
    means = {m: row[metric][0] for m, row in summary.items() if not math.isnan(row[metric][0])}
    return (max if better else min)(means, key=means.get)


FORMATS = {"circuit edges": ".0f", "train seconds": ".2f", "activation MB": ".3f"}
"""Number formats of the scoreboard table (default `.3f`)."""


def markdown_table(summary: Mapping[str, Mapping[str, tuple[float, float]]], seeds: int) -> str:
    """The scoreboard as a markdown table: a row per method, `mean ± sd` over `seeds` per metric, the
    best mean of each column in bold, n/a where a metric is not defined for the method."""
    metrics = list(next(iter(summary.values())))
    better = directions()
    best = {k: best_method(summary, k) for k in metrics}
    head = ["method"] + [f"{k} {'↑' if better[k] else '↓'}" for k in metrics]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for method, row in summary.items():
        cells = []
        for metric, (mean, sd) in row.items():
            form = FORMATS.get(metric, ".3f")
            text = (
                "n/a"
                if math.isnan(mean)
                else f"{mean:{form}}" + ("" if math.isnan(sd) else f" ± {sd:{form}}")
            )
            cells.append(f"**{text}**" if best[metric] == method else text)
        lines.append(f"| {NAMES.get(method, method)} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + (
        f"\n\nmean ± sd over {seeds} seed(s); ↑ higher is better, ↓ lower is better; the best mean in bold"
    )
