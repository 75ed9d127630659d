"""The Method API (`modlearn.api`): every method's entry point has one shape and returns one `Run`.

`train_<method>(model, data, config=None, train=None, *, hooks=()) -> Run`; the model passed is never
changed (`run.model` is a new, trained network); `hooks` reach every `fit` the method runs; `train` is
what `fit` receives, except the fields a method documents that it replaces (its own steps).
"""

from __future__ import annotations

import dataclasses
import inspect
import typing

import pytest
import torch
import torch.nn as nn

import modlearn as ml
from modlearn import bimt, causal, cluster, incubation, local, nemo
from modlearn.api import ModelContractError, Run
from modlearn.data import symbolic_task
from modlearn.train import History, Hook, TrainConfig

ENTRY_POINTS = {
    "local": local.train_local,
    "nemo": nemo.train_nemo,
    "cluster": cluster.train_cluster,
    "incubation": incubation.train_incubation,
    "bimt": bimt.train_bimt,
    "dcm": causal.train_dcm,
}
MODULES = {"local": local, "nemo": nemo, "cluster": cluster, "incubation": incubation, "bimt": bimt}
STEP_OVERRIDES = {"epochs", "max_steps", "desc"}
TINY = TrainConfig(epochs=None, max_steps=6, batch_size=32, progress=False, seed=0)


def digits():
    return ml.load_dataset("digits", verbose=False)


def mlp(data, hidden=(16, 16)):
    torch.manual_seed(0)
    return ml.make_model("mlp", data.input_shape, data.num_classes, hidden=hidden)


def plain_sequential(data):
    """What a learner writes without modlearn: a plain `nn.Sequential` MLP."""
    torch.manual_seed(0)
    features = int(torch.tensor(data.input_shape).prod())
    return nn.Sequential(
        nn.Flatten(), nn.Linear(features, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10)
    )


def front_door():
    scm, graph = causal.front_door_scm()
    config = causal.DCMConfig(noise_dim=4, confounder_dim=4, hidden=(16,), critic_hidden=(16,))
    return scm, causal.DCM(graph, [causal.Variable(v) for v in "XZY"], config)


def call(method: str, train: TrainConfig = TINY, hooks=(), model=None):
    """One small run of `method` through its entry point; `model` replaces the default network."""
    data = digits()
    if method == "local":
        return local.train_local(model or mlp(data), data, local.LocalConfig(mode="dgl"), train, hooks=hooks)
    if method == "nemo":
        return nemo.train_nemo(model or mlp(data), data, None, train, hooks=hooks)
    if method == "cluster":
        return cluster.train_cluster(model or mlp(data), data, cluster.ClusterConfig(k=2), train, hooks=hooks)
    if method == "incubation":
        meta, target = incubation.make_pair("resmlp", data.input_shape, 10, width=16, blocks_per_stage=1)
        config = incubation.IncubationConfig(meta_steps=3, incubation_steps=2, finetune_steps=2)
        return incubation.train_incubation(
            model or target, data, config, train, hooks=hooks, meta=meta, parallel=False
        )
    if method == "bimt":
        task = symbolic_task("independence", 32, 8)
        return bimt.train_bimt(
            model or bimt.BioMLP([4, 6, 2]), task, bimt.BIMTConfig(steps=4), train, hooks=hooks
        )
    scm, dcm = front_door()
    return causal.train_dcm(model or dcm, scm.sample(200, seed=0), None, train, hooks=hooks)


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("method", sorted(ENTRY_POINTS))
def test_entry_point_has_the_one_shape(method):
    fn = ENTRY_POINTS[method]
    params = inspect.signature(fn).parameters
    assert list(params)[:4] == ["model", "data", "config", "train"], f"{fn.__name__}{inspect.signature(fn)}"
    assert params["config"].default is None and params["train"].default is None
    assert params["hooks"].kind is inspect.Parameter.KEYWORD_ONLY and params["hooks"].default == ()
    hints = typing.get_type_hints(fn)
    assert hints["train"] == (TrainConfig | None)
    assert typing.get_origin(hints["return"]) is Run or hints["return"] is Run


class CountSteps(Hook):
    def __init__(self) -> None:
        self.steps, self.fits = 0, 0

    def on_fit_start(self, state) -> None:
        self.fits += 1

    def on_step_end(self, state) -> None:
        self.steps += 1


@pytest.mark.parametrize("method", sorted(ENTRY_POINTS))
def test_returns_a_run_with_a_new_trained_model_and_leaves_the_given_one_unchanged(method, one_torch_thread):
    data = digits()
    given = {
        "local": lambda: mlp(data),
        "nemo": lambda: mlp(data),
        "cluster": lambda: mlp(data),
        "incubation": lambda: incubation.make_pair(
            "resmlp", data.input_shape, 10, width=16, blocks_per_stage=1
        )[1],
        "bimt": lambda: bimt.BioMLP([4, 6, 2]),
        "dcm": lambda: front_door()[1],
    }[method]()
    before = weights(given)
    counter = CountSteps()
    run = call(method, hooks=[counter], model=given)
    assert isinstance(run, Run)
    assert isinstance(run.history, History) and run.history.num_steps > 0
    assert (
        all(isinstance(h, History) for h in run.histories.values()) and run.history in run.histories.values()
    )
    assert run.model is not given
    assert all(torch.equal(before[k], v) for k, v in given.state_dict().items()), "the given model changed"
    trained = weights(run.model)
    assert any(not torch.equal(before[k], trained[k]) for k in before if k in trained), (
        "run.model is untrained"
    )
    assert counter.steps == run.steps > 0, (counter.steps, run.steps)
    assert counter.fits == len(run.histories)


@pytest.mark.parametrize("method", sorted(ENTRY_POINTS))
def test_a_bad_hook_is_refused_before_any_step(method):
    with pytest.raises(ValueError, match=r"hooks\[0\]"):
        call(method, hooks=[1])


@pytest.mark.parametrize("method", ["local", "cluster", "nemo"])
def test_a_learners_plain_sequential_trains(method, one_torch_thread):
    data = digits()
    model = plain_sequential(data)
    train = dataclasses.replace(TINY, max_steps=60, lr=3e-3)
    run = call(method, train=train, model=model)
    assert isinstance(run, Run) and run.history.num_steps > 0
    acc = ml.evaluate(run.model, data.test)["acc"]
    assert acc > 0.5, f"{method} on a plain nn.Sequential: test accuracy {acc:.2f} after 60 steps"


@pytest.mark.parametrize(
    "method,converter", [("bimt", "bimt.from_mlp"), ("dcm", "causal.DCM"), ("incubation", "BlockModel")]
)
def test_a_model_the_method_cannot_train_gets_one_error_naming_the_converter(method, converter):
    with pytest.raises(ModelContractError, match=converter.replace(".", r"\.")):
        call(method, model=nn.Linear(3, 3))


def test_the_contract_error_has_one_wording_everywhere():
    messages = []
    for method in ("local", "cluster", "nemo"):
        with pytest.raises(ModelContractError) as err:
            call(method, model=nn.Linear(3, 3))
        messages.append(str(err.value).split(":", 1)[1])
    assert len(set(messages)) == 1, messages


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

    class FitCalled(Exception):
        pass

    def fake_fit(model, data, config, *args, **kwargs):
        seen.append(config)
        raise FitCalled

    for module in [*vars(MODULES[method]).values(), MODULES[method]]:
        if inspect.ismodule(module) and module.__name__.startswith(MODULES[method].__name__):
            if hasattr(module, "fit"):
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
    with pytest.raises(FitCalled):
        call(method, train=train)
    given, received = dataclasses.asdict(train), dataclasses.asdict(seen[0])
    differing = {k for k in given if given[k] != received[k]}
    assert differing <= replaced, {k: (given[k], received[k]) for k in differing}
    if replaced:
        assert received["max_steps"] != train.max_steps, "the method's own steps replace max_steps"


def test_from_sequential_cuts_blocks_at_weight_layers_and_shares_parameters():
    seq = nn.Sequential(
        nn.Flatten(), nn.Linear(64, 8), nn.ReLU(), nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 3)
    )
    model = ml.models.BlockModel.from_sequential(seq)
    assert [len(b) for b in model.blocks] == [3, 2]
    assert model.head is seq[5] or model.head[0] is seq[5]
    x = torch.randn(4, 1, 8, 8)
    assert torch.equal(model(x), seq(x))
    assert model.blocks[1][0].weight is seq[3].weight
    with pytest.raises(ValueError, match="at least two"):
        ml.models.BlockModel.from_sequential(nn.Sequential(nn.Flatten(), nn.Linear(64, 3)))
