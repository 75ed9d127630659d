"""The scoreboard: every metric on a hand-built network with known answers, the registries, training."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn

from modlearn import bimt, circuits
from modlearn.api import Run
from modlearn.data import Dataset, Split, load_dataset
from modlearn.models import MLP
from modlearn.scoreboard import (
    COSTS,
    NAMES,
    SCOREBOARD_METHODS,
    SCOREBOARD_METRICS,
    circuit_problem,
    family_agreement,
    fresh_model,
    markdown_table,
    masked_linear_net,
    matched_module,
    normalise,
    rank_correlations,
    retained_weights,
    score,
    score_summary,
    scoreboard_mlp,
    step_budget,
    train_all,
    train_plain_e2e,
    unit_activity,
    weight_layers,
)
from modlearn.train import TrainConfig, fit

CLASSES_N, PIXELS, UNITS = 10, 2, 2  # ten classes, each with its own 2 input pixels and 2 units per layer


def class_groups_task(n_per_class: int = 40, seed: int = 0) -> Dataset:
    """Class c lights up its own two input pixels (uniform in [0.5, 1]); every other pixel is 0."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(CLASSES_N).repeat_interleave(n_per_class)
    x = torch.zeros(len(y), CLASSES_N * PIXELS)
    for c in range(CLASSES_N):
        rows = y == c
        x[rows, c * PIXELS : (c + 1) * PIXELS] = 0.5 + 0.5 * torch.rand(
            int(rows.sum()), PIXELS, generator=gen
        )
    split = Split(x.view(len(y), 1, 4, 5), y)
    return Dataset("groups", split, split, split, CLASSES_N, "class c lights its own two pixels")


def disjoint_modules() -> MLP:
    """Ten disjoint modules: module c reads class c's pixels, has 2 units per layer, drives logit c."""
    model = MLP((1, 4, 5), hidden=(CLASSES_N * UNITS, CLASSES_N * UNITS), num_classes=CLASSES_N)
    blocks = (
        torch.block_diag(*[torch.ones(UNITS, PIXELS)] * CLASSES_N),
        torch.block_diag(*[torch.ones(UNITS, UNITS)] * CLASSES_N),
        torch.block_diag(*[torch.ones(1, UNITS)] * CLASSES_N),
    )
    with torch.no_grad():
        for linear, weight in zip((model.blocks[0][1], model.blocks[1][0], model.head), blocks, strict=True):
            linear.weight.copy_(weight)
            linear.bias.zero_()
    return model


# Measured by hand. C = 1 and the cut costs nothing (no weight between modules, and k = 4 clusters
# each hold whole modules); Newman Q of 10 equal disconnected components is 1 - 10 (1/10)^2 = 0.9.
# Module {3, 5, 8}: 6 of the 20 units of each layer; every input is kept, so the weights kept are
# 20 * 6 + 6 * 6 of 20 * 20 + 20 * 20. The circuit of class 3 is module 3: 2 x 2 + 2 x 2 + 2 edges.
KNOWN = {
    "test accuracy": 1.0,
    "clusterability C": 1.0,
    "cut cost": 0.0,
    "Newman Q": 0.9,
    "module size": (20 * 6 + 6 * 6) / (20 * 20 + 20 * 20),
    "circuit edges": 10.0,
}


def test_every_metric_on_disjoint_modules_has_its_known_answer():
    assert set(KNOWN) | {"wire length"} == set(SCOREBOARD_METRICS), (
        "every registered metric needs a known answer here"
    )
    scores = score({"modules": disjoint_modules()}, class_groups_task(), metrics=list(KNOWN))["modules"]
    assert scores == pytest.approx(KNOWN, abs=1e-6)


def test_wire_length_after_swaps_shortens_a_shuffled_layout_and_keeps_an_optimal_one():
    model, data = disjoint_modules(), class_groups_task()
    measure = SCOREBOARD_METRICS["wire length"].measure
    blocks = bimt.BioMLP([20, 20, 20], "1d")  # the blocks' layers alone, as the metric reads them
    with torch.no_grad():
        for mine, theirs in zip(blocks.linears, (model.blocks[0][1], model.blocks[1][0]), strict=True):
            mine.weight.copy_(theirs.weight)
    ordered = bimt.wire_length(blocks)  # each module's units sit next to its inputs: no swap helps
    assert measure(model, data) == pytest.approx(ordered)
    shuffled = bimt.from_mlp(model)
    gen = torch.Generator().manual_seed(0)
    for layer in (1, 2):
        shuffled.permute_layer(layer, torch.randperm(CLASSES_N * UNITS, generator=gen))
    scrambled = bimt.to_mlp(shuffled)
    assert torch.allclose(scrambled(data.test.x), model(data.test.x), atol=1e-6)
    raw = bimt.wire_length(bimt.from_mlp(scrambled))
    assert measure(scrambled, data) < 0.5 * raw  # the swaps undo most of the shuffle (a local search)


def test_circuits_of_two_classes_share_no_edge_and_unit():
    model, data = disjoint_modules(), class_groups_task()
    found = [
        circuits.edges_for_faithfulness(circuit_problem(model, data, label), 0.95, (1e-2, 1e-3, 0.0))
        for label in (3, 5)
    ]
    assert all(c.faithfulness >= 0.95 for c in found)
    assert not any((a & b).any() for a, b in zip(found[0].masks, found[1].masks, strict=True))
    assert circuits.circuit_overlap(*found) == 0


def test_a_dense_random_network_is_far_from_the_modular_answers():
    torch.manual_seed(0)
    dense = MLP((1, 4, 5), hidden=(20, 20), num_classes=CLASSES_N)
    fit(dense, class_groups_task(), TrainConfig(epochs=None, max_steps=150, lr=1e-2, progress=False))
    scores = score({"dense": dense}, class_groups_task())["dense"]
    assert scores["test accuracy"] > 0.9
    assert scores["clusterability C"] < 0.7
    assert scores["Newman Q"] < 0.6
    assert scores["module size"] > KNOWN["module size"] + 0.1
    assert scores["circuit edges"] > 2 * KNOWN["circuit edges"]


def test_retained_weights_counts_weights_with_both_ends_kept():
    keep = {"block0": torch.tensor([True, False, True]), "block1": torch.tensor([True, False])}
    # widths 4 -> 3 -> 2: 4 * 2 of 12, then 2 * 1 of 6
    assert retained_weights(keep, [4, 3, 2]) == pytest.approx((4 * 2 + 2 * 1) / (12 + 6))


def masked_on_groups(mode: str, data: Dataset) -> nn.Module:
    """A 20-20 masked MLP trained 30 steps on the class-groups task with `mode` ("mwt" or "nemo")."""
    torch.manual_seed(0)
    model = MLP((1, 4, 5), hidden=(20, 20), num_classes=CLASSES_N)
    config = TrainConfig(epochs=None, max_steps=30, progress=False)
    return SCOREBOARD_METHODS[mode](model, data, config).model


def test_module_activity_of_a_masked_model_needs_the_mask_on():
    data = class_groups_task()
    masked = masked_on_groups("nemo", data)
    activity = unit_activity(masked, data.train)
    with torch.no_grad():
        masked(data.train.x)
    mask = masked.blocks[1][0].last_mask
    assert not (activity["block1"] & (mask == 0)).any(), "a unit whose mask is off cannot be on"
    assert matched_module(masked, data)["weight_retention"] <= 1.0


def test_gated_circuit_reproduces_the_masked_model_and_holds_its_masks():
    data = class_groups_task()
    masked = masked_on_groups("mwt", data)
    problem = circuit_problem(masked, data, 3)
    clean = circuits.class_batches(data.test.x, data.test.y, 3, n=32)[0]
    with torch.no_grad():
        expected = masked.eval()(clean).double()
    full = circuits.circuit_output(problem, circuits.Circuit(problem.all_edges(), 0.0, "full"))
    assert torch.allclose(full, expected, atol=1e-5)
    net = masked_linear_net(masked)
    ungated = circuits.LinearNet(net.weights, net.biases, net.activation, net.prepare, net.output_order)
    with torch.no_grad():
        plain = circuits.PatchingProblem(ungated, clean, clean.flip(0), output=3).full.out
    assert not torch.allclose(plain, expected, atol=1e-3), "without its gates the net is another function"


def test_to_mlp_and_from_mlp_keep_the_function():
    torch.manual_seed(0)
    model, x = MLP((1, 4, 5), hidden=(6, 6), num_classes=3), torch.randn(8, 1, 4, 5)
    bio = bimt.from_mlp(model)
    bio.permute_layer(0, torch.randperm(20))
    bio.permute_layer(1, torch.randperm(6))
    bio.permute_layer(3, torch.randperm(3))
    assert torch.allclose(bio(x.flatten(1)), model(x), atol=1e-6)
    assert torch.allclose(bimt.to_mlp(bio)(x), model(x), atol=1e-6)


def test_normalise_points_the_best_value_to_one():
    assert normalise([1.0, 3.0, 2.0], higher_is_better=True) == [0.0, 1.0, 0.5]
    assert normalise([1.0, 3.0, 2.0], higher_is_better=False) == [1.0, 0.0, 0.5]
    assert normalise([2.0, 2.0], higher_is_better=True) == [0.5, 0.5]
    assert math.isnan(normalise([1.0, math.nan, 2.0], True)[1])


def test_rank_correlations_are_one_on_the_diagonal_and_minus_one_for_a_negation():
    values = [0.3, 0.1, 0.7, 0.5]
    other = [0.2, 0.9, 0.4, 0.8]
    scores = {
        f"m{i}": {"a": v, "minus a": -v, "b": w} for i, (v, w) in enumerate(zip(values, other, strict=True))
    }
    rho = rank_correlations(scores)
    assert [rho[m][m] for m in ("a", "minus a", "b")] == [1.0, 1.0, 1.0]
    assert rho["a"]["minus a"] == pytest.approx(-1.0)
    assert rho["a"]["b"] == pytest.approx(rho["b"]["a"])
    assert abs(rho["a"]["b"]) < 1.0


def test_rank_correlations_skip_undefined_values_and_family_agreement_orients():
    scores = {
        "m0": {"clusterability C": 0.9, "cut cost": 0.0, "circuit edges": math.nan},
        "m1": {"clusterability C": 0.5, "cut cost": 0.3, "circuit edges": 100.0},
        "m2": {"clusterability C": 0.3, "cut cost": 0.6, "circuit edges": 300.0},
        "m3": {"clusterability C": 0.4, "cut cost": 0.4, "circuit edges": 200.0},
    }
    rho = rank_correlations(scores)
    assert rho["clusterability C"]["cut cost"] == pytest.approx(-1.0)
    assert rho["clusterability C"]["circuit edges"] == pytest.approx(-1.0)  # over m1..m3 only
    # high C and a low cut are both "better": oriented, they agree
    assert family_agreement(rho, ["clusterability C"], ["cut cost"]) == pytest.approx(1.0)


def test_train_all_trains_every_method_from_the_same_weights_and_scores_every_metric():
    data = load_dataset("digits")

    def factory() -> MLP:
        return scoreboard_mlp(data, width=16)

    runs = train_all(factory, data, steps=16, seeds=(0,))
    assert set(runs) == {f"{method}/0" for method in SCOREBOARD_METHODS} and set(NAMES) == set(
        SCOREBOARD_METHODS
    )
    start = fresh_model(factory, 0).blocks[0][1].weight
    for label, run in runs.items():
        first = run.model.get_submodule(weight_layers(run.model)[0]).weight
        assert run.seconds > 0 and run.activation_bytes > 0
        assert first.shape == start.shape
        assert not torch.equal(first.detach().cpu(), start.detach()), (
            f"{label} left its first layer untrained"
        )
    scores = score(runs, data)
    assert all(set(row) == set(SCOREBOARD_METRICS) | set(COSTS) for row in scores.values())
    assert math.isnan(scores["ff/0"]["circuit edges"]), "Forward-Forward has no output neuron to explain"
    memory = {label: row["activation MB"] for label, row in scores.items()}
    assert memory["dgl/0"] < memory["e2e/0"] < memory["nemo/0"]
    table = markdown_table(score_summary(scores), 1)
    assert all(NAMES[m] in table for m in SCOREBOARD_METHODS) and "n/a" in table


def test_every_method_takes_the_step_budget_returns_a_run_and_leaves_the_model_unchanged(monkeypatch):
    data, steps = load_dataset("digits"), []

    def counting(step):
        def counted(self, *args, **kwargs):
            steps.append(1)
            return step(self, *args, **kwargs)

        return counted

    for optimizer in (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD):
        monkeypatch.setattr(optimizer, "step", counting(optimizer.step))
    counted = {}
    for method in SCOREBOARD_METHODS:
        steps.clear()
        model = fresh_model(lambda: scoreboard_mlp(data, width=8), 0)
        before = {k: v.clone() for k, v in model.state_dict().items()}
        run = SCOREBOARD_METHODS[method](model, data, step_budget(16, 0))
        counted[method] = len(steps)
        assert isinstance(run, Run) and run.seconds > 0, method
        assert run.model is not model, f"{method} returned the model it was given"
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items()), (
            f"{method} changed its model"
        )
    # greedy splits the budget between its modules, Deep Incubation and the clusterability run between phases
    assert counted == {method: 16 for method in SCOREBOARD_METHODS}, counted


def test_a_learners_method_is_one_entry_returning_a_run(monkeypatch):
    data = load_dataset("digits")
    seen = []

    def train_mine(model, data, train):
        seen.append(train.max_steps)
        run = train_plain_e2e(model, data, train)
        return Run(run.model, run.history, None, method="mine", seconds=run.seconds)

    monkeypatch.setitem(SCOREBOARD_METHODS, "mine", train_mine)
    runs = train_all(lambda: scoreboard_mlp(data, width=8), data, 4, seeds=(0,), methods=["mine", "e2e"])
    assert seen == [4]
    mine, e2e = runs["mine/0"], runs["e2e/0"]
    assert mine.seconds == mine.run.seconds > 0 and mine.model is mine.run.model
    assert mine.activation_bytes == e2e.activation_bytes, (
        "without a probe: one cross-entropy step of run.model"
    )
    assert torch.equal(mine.model.head.weight, e2e.model.head.weight), "same seed, same loop, same weights"


@pytest.mark.parametrize(
    "call, names",
    [
        (lambda: score({}, class_groups_task(), metrics=["acuracy"]), ["metrics", "'test accuracy'"]),
        (lambda: train_all(MLP, class_groups_task(), 5, methods=["bimtt"]), ["methods", "'bimt'"]),
        (lambda: train_all(MLP, class_groups_task(), 0), ["steps"]),
        (lambda: rank_correlations({"one": {"a": 1.0}}), ["scores"]),
    ],
)
def test_bad_input_names_the_argument(call, names):
    with pytest.raises(ValueError) as err:
        call()
    assert all(name in str(err.value) for name in names)
