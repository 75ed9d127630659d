"""The scoreboard: every metric on hand-built networks with known answers, the registries, training."""

from __future__ import annotations

import pytest
import torch

from modlearn.bimt import weights_modularity
from modlearn.data import Dataset, Split, load_dataset
from modlearn.models import MLP
from modlearn.scoreboard import (
    METHODS,
    METRICS,
    fresh_model,
    rank_correlations,
    score,
    train_all,
    weight_layers,
)

BLOCKS = 4


def group_sum_task(n: int = 256, seed: int = 0) -> Dataset:
    """16 inputs in 4 groups of 4; the label is the group with the largest sum."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 4, 4, generator=generator)
    split = Split(x, x.flatten(1).view(n, BLOCKS, 4).sum(-1).argmax(1))
    return Dataset("groups", split, split, split, BLOCKS, "label = the input group with the largest sum")


def block_diagonal(rows: int, cols: int) -> torch.Tensor:
    """`(BLOCKS * rows, BLOCKS * cols)`: ones on the diagonal blocks, zeros elsewhere."""
    return torch.block_diag(*[torch.ones(rows, cols)] * BLOCKS)


def disjoint_blocks() -> MLP:
    """An MLP of 4 disjoint modules: module c reads input group c and drives class c only."""
    model = MLP((1, 4, 4), hidden=(8, 8), num_classes=BLOCKS)
    with torch.no_grad():
        for linear, weight in zip(
            (model.blocks[0][1], model.blocks[1][0], model.head),
            (block_diagonal(2, 4), block_diagonal(2, 2), block_diagonal(1, 2)),
            strict=True,
        ):
            linear.weight.copy_(weight)
            linear.bias.zero_()
    return model


# Four modules, measured by hand: C = 1 (no weight between clusters), the cut removes nothing, and
# Newman Q of c equal disconnected components is 1 - c (1/c)^2, here 1 - 4/16.
KNOWN = {"test accuracy": 1.0, "clusterability C": 1.0, "cut cost": 0.0, "Newman Q": 0.75}


def test_every_metric_on_disjoint_blocks_has_its_known_answer():
    assert set(KNOWN) == set(METRICS), "every registered metric needs a known answer here"
    scores = score({"blocks": disjoint_blocks()}, group_sum_task())["blocks"]
    assert scores == pytest.approx(KNOWN, abs=1e-6)


def test_newman_q_of_two_equal_disconnected_blocks_is_one_half():
    weights = [
        torch.block_diag(torch.ones(3, 5), torch.ones(3, 5)),
        torch.block_diag(*[torch.ones(2, 3)] * 2),
    ]
    assert weights_modularity(weights) == pytest.approx(0.5, abs=1e-9)


def test_a_dense_random_network_is_far_from_the_modular_answers():
    torch.manual_seed(0)
    scores = score({"dense": MLP((1, 4, 4), hidden=(8, 8), num_classes=BLOCKS)}, group_sum_task())["dense"]
    assert scores["clusterability C"] < 0.7
    assert scores["Newman Q"] < 0.5


def test_score_covers_every_metric_for_every_model():
    torch.manual_seed(0)
    models = {"blocks": disjoint_blocks(), "dense": MLP((1, 4, 4), hidden=(8, 8), num_classes=BLOCKS)}
    scores = score(models, group_sum_task())
    assert set(scores) == set(models)
    assert all(set(row) == set(METRICS) for row in scores.values())
    assert set(score(models, group_sum_task(), metrics=["Newman Q"])["dense"]) == {"Newman Q"}


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


def test_train_all_returns_a_trained_model_per_method_and_seed():
    data = load_dataset("digits")

    def factory() -> MLP:
        return MLP(data.input_shape, hidden=(8, 8, 8, 8), num_classes=data.num_classes)

    runs = train_all(factory, data, steps=5, seeds=(0, 1))
    assert set(runs) == {f"{method}/{seed}" for method in METHODS for seed in (0, 1)}
    for label, run in runs.items():
        start = fresh_model(factory, run.seed).blocks[0][1].weight
        first = run.model.get_submodule(weight_layers(run.model)[0]).weight
        assert run.seconds > 0
        assert not torch.equal(first.detach().cpu(), start.detach()), (
            f"{label} left its first layer untrained"
        )


@pytest.mark.parametrize(
    "call, names",
    [
        (lambda: score({}, group_sum_task(), metrics=["acuracy"]), ["metrics", "'test accuracy'"]),
        (lambda: train_all(MLP, group_sum_task(), 5, methods=["bimt"]), ["methods", "'nemo'"]),
        (lambda: train_all(MLP, group_sum_task(), 0), ["steps"]),
        (lambda: rank_correlations({"one": {"a": 1.0}}), ["scores"]),
    ],
)
def test_bad_input_names_the_argument(call, names):
    with pytest.raises(ValueError) as err:
        call()
    assert all(name in str(err.value) for name in names)
