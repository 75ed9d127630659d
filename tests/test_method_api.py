"""Every method plugs into the loop the same way: `train_<method>(model, data, config, train)`.

`train` is a `TrainConfig | None`; what `fit` receives is that `TrainConfig`, except for the
fields a method documents that it replaces (steps of its own -> `epochs`, `max_steps`, `desc`).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing

import pytest
import torch

import modlearn as ml
from modlearn import bimt, cluster, incubation, local, nemo
from modlearn.data import symbolic_task
from modlearn.train import TrainConfig

ENTRY_POINTS = {
    "local": local.train_local,
    "nemo": nemo.train_nemo,
    "cluster": cluster.train_cluster,
    "incubation": incubation.train_incubation,
    "bimt": bimt.train_bimt,
}
STEP_OVERRIDES = {"epochs", "max_steps", "desc"}


class _FitCalled(Exception):
    """Raised by the stand-in `fit` once it has seen the config: nothing is trained."""


@pytest.mark.parametrize("method", sorted(ENTRY_POINTS))
def test_entry_point_signature(method):
    fn = ENTRY_POINTS[method]
    assert fn.__name__ == f"train_{method}"
    params = inspect.signature(fn).parameters
    assert list(params)[:4] == ["model", "data", "config", "train"], f"{fn.__name__}{inspect.signature(fn)}"
    assert params["config"].default is None and params["train"].default is None
    assert typing.get_type_hints(fn)["train"] == (TrainConfig | None)


def test_deep_incubation_takes_the_same_train_argument():
    params = inspect.signature(incubation.DeepIncubation).parameters
    assert list(params)[3:5] == ["config", "train"] and params["train"].default is None
    assert typing.get_type_hints(incubation.DeepIncubation.__init__)["train"] == (TrainConfig | None)


def _run(method: str, train: TrainConfig):
    digits = ml.load_dataset("digits", verbose=False)
    torch.manual_seed(0)
    if method == "local":
        return local.train_local(
            ml.make_model("mlp", digits.input_shape, 10, hidden=(16, 16)), digits, None, train
        )
    if method == "nemo":
        return nemo.train_nemo(
            ml.make_model("mlp", digits.input_shape, 10, hidden=(16, 16)), digits, None, train
        )
    if method == "cluster":
        return cluster.train_cluster(
            ml.make_model("mlp", digits.input_shape, 10, hidden=(16,)),
            digits,
            cluster.ClusterConfig(k=2),
            train,
        )
    if method == "incubation":
        meta, target = incubation.make_pair("resmlp", digits.input_shape, 10, width=16, blocks_per_stage=1)
        return incubation.train_incubation(
            target, digits, incubation.IncubationConfig(meta_steps=3), train, meta=meta
        )
    return bimt.train_bimt(
        bimt.BioMLP([4, 6, 2]), symbolic_task("independence", 32, 8), bimt.BIMTConfig(steps=4), train
    )


@pytest.mark.parametrize(
    "method,replaced",
    [
        ("local", set()),
        ("nemo", set()),
        ("cluster", set()),
        ("incubation", STEP_OVERRIDES),
        ("bimt", STEP_OVERRIDES),
    ],
)
def test_fit_receives_the_train_config(method, replaced, monkeypatch):
    seen = []

    def fake_fit(model, data, config, *args, **kwargs):
        seen.append(config)
        raise _FitCalled

    module = {"local": local, "nemo": nemo, "cluster": cluster, "incubation": incubation, "bimt": bimt}[
        method
    ]
    monkeypatch.setattr(module, "fit", fake_fit)
    train = TrainConfig(
        epochs=3,
        batch_size=16,
        lr=0.0123,
        optimizer="sgd",
        weight_decay=0.01,
        max_steps=7,
        seed=5,
        progress=False,
        device="cpu",
        desc="mine",
    )
    with pytest.raises(_FitCalled):
        _run(method, train)
    given, received = dataclasses.asdict(train), dataclasses.asdict(seen[0])
    differing = {k for k in given if given[k] != received[k]}
    assert differing <= replaced, {k: (given[k], received[k]) for k in differing}
    if replaced:
        assert received["max_steps"] != train.max_steps, "the method's own steps replace max_steps"
