"""Exact resume (modlearn.train.fit): a run stopped at any step and resumed equals the straight run."""

import os
import signal

import pytest
import torch
import torch.nn as nn
from conftest import InterruptAt

import modlearn as ml
from modlearn import causal, train
from modlearn.data import Split
from modlearn.incubation import CosineDecay
from modlearn.train import CrossEntropy, TrainConfig, fit

STEPS_PER_EPOCH = 10  # 320 samples in batches of 32


@pytest.fixture(scope="module")
def digits():
    ds = ml.load_dataset("digits", verbose=False)
    return Split(ds.train.x[:320], ds.train.y[:320]), Split(ds.val.x[:100], ds.val.y[:100])


def _mlp(seed):
    torch.manual_seed(seed)
    return ml.make_model("mlp", (1, 8, 8), hidden=(32,))


def _cnn_with_dropout(seed):
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),
        nn.ReLU(),
        nn.Dropout(0.3),
        nn.Flatten(),
        nn.Dropout(0.2),
        nn.Linear(4 * 8 * 8, 10),
    )


def _config(path, **overrides):
    return TrainConfig(
        **{
            "epochs": 4,
            "batch_size": 32,
            "lr": 3e-3,
            "progress": False,
            "checkpoint_path": str(path),
            **overrides,
        }
    )


def _contents(path):
    """A checkpoint's contents without the wall-clock seconds of the epoch rows."""
    saved = train.read_checkpoint(path)
    for row in saved["history"]["epochs"]:
        row.pop("seconds")
    return saved


def _assert_same(a, b, where="checkpoint"):
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, dict):
        assert list(a) == list(b), where
        for key in a:
            _assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def _stopped_and_resumed(make_model, data, tmp_path, stop, how, hooks=lambda: (), **overrides):
    straight = tmp_path / "straight.pt"
    fit(make_model(0), data[0], _config(straight, **overrides), hooks=hooks(), val=data[1])
    path = tmp_path / "resumed.pt"
    if how == "interrupt":
        first = fit(
            make_model(0),
            data[0],
            _config(path, **overrides),
            hooks=[*hooks(), InterruptAt(stop)],
            val=data[1],
        )
        assert first.interrupted
    else:
        first = fit(
            make_model(0), data[0], _config(path, max_steps=stop, **overrides), hooks=hooks(), val=data[1]
        )
    assert first.num_steps == stop
    history = fit(
        make_model(123), data[0], _config(path, resume=True, **overrides), hooks=hooks(), val=data[1]
    )
    _assert_same(_contents(straight), _contents(path))
    return history


@pytest.mark.parametrize(
    "stop, how", [(7, "interrupt"), (10, "interrupt"), (23, "interrupt"), (15, "max_steps")]
)
def test_mlp_resumed_at_any_step_equals_the_straight_run(digits, tmp_path, stop, how):
    history = _stopped_and_resumed(_mlp, digits, tmp_path, stop, how)
    assert [row["epoch"] for row in history.epochs] == [1, 2, 3, 4]
    assert history.num_steps == 40 and not history.interrupted


@pytest.mark.parametrize(
    "stop, how",
    [
        (int(torch.randint(1, 40, (1,), generator=torch.Generator().manual_seed(5))), "interrupt"),
        (26, "max_steps"),
    ],
)
def test_cnn_with_dropout_resumes_bit_for_bit(digits, tmp_path, stop, how):
    _stopped_and_resumed(_cnn_with_dropout, digits, tmp_path, stop, how)


def test_max_steps_counts_the_steps_of_the_whole_run(digits, tmp_path):
    path = tmp_path / "ckpt.pt"
    fit(_mlp(0), digits[0], _config(path, max_steps=15))
    history = fit(_mlp(0), digits[0], _config(path, max_steps=30, resume=True))
    assert history.num_steps == 30 and [row["epoch"] for row in history.epochs] == [1, 2, 3]


def test_cosine_decay_keeps_its_base_learning_rates_through_a_resume(digits, tmp_path):
    history = _stopped_and_resumed(
        _mlp, digits, tmp_path, 13, "interrupt", hooks=lambda: [CosineDecay(1e-5)], optimizer="adamw"
    )
    assert history.num_steps == 40
    assert _contents(tmp_path / "resumed.pt")["parts"]["hook0.CosineDecay"] == {"base": [3e-3]}


def _dcm_run(path, stop=None, how=None, resume=False, init_seed=0):
    scm, graph = causal.front_door_scm()
    config = causal.DCMConfig(
        noise_dim=4, confounder_dim=4, hidden=(16,), critic_hidden=(16,), anneal_every=5, tau_rate=0.05
    )
    train = causal.dcm_train_config(
        lr=1e-2,
        batch_size=64,
        epochs=3,
        seed=0,
        max_steps=stop if how == "max_steps" else None,
        checkpoint_path=str(path),
        resume=resume,
    )
    torch.manual_seed(init_seed)
    dcm = causal.DCM(graph, [causal.Variable(v) for v in "XZY"], config)
    hooks = [InterruptAt(stop)] if how == "interrupt" else []
    step = graph.training_steps()[1]
    return causal.train_step(dcm, step, scm.sample(500, seed=0), train=train, hooks=hooks)


@pytest.mark.parametrize("stop, how", [(11, "interrupt"), (17, "max_steps")])
def test_dcm_with_its_critic_optimizer_resumes_bit_for_bit(tmp_path, stop, how):
    _dcm_run(tmp_path / "straight.pt")
    _dcm_run(tmp_path / "resumed.pt", stop, how)
    history = _dcm_run(tmp_path / "resumed.pt", resume=True, init_seed=7)
    assert history.num_steps == 24
    saved = _contents(tmp_path / "resumed.pt")
    assert saved["parts"]["objective"]["critic_optimizer"]["state"]
    _assert_same(_contents(tmp_path / "straight.pt"), saved)


def test_a_second_ctrl_c_while_stopping_still_returns_the_history(digits, tmp_path, monkeypatch):
    save = train.save_checkpoint

    def save_while_ctrl_c(path, model, optimizer, history, epoch, step, **kwargs):
        if step == 13:  # the save of the interrupt handler
            os.kill(os.getpid(), signal.SIGINT)
        save(path, model, optimizer, history, epoch, step, **kwargs)

    monkeypatch.setattr(train.loop, "save_checkpoint", save_while_ctrl_c)  # where fit looks it up
    model = _mlp(0)
    try:
        history = fit(model, digits[0], _config(tmp_path / "ckpt.pt"), hooks=[InterruptAt(13)])
    except KeyboardInterrupt:
        pytest.fail("the second Ctrl-C escaped fit: the history was lost")
    assert history.interrupted and history.num_steps == 13
    assert train.read_checkpoint(tmp_path / "ckpt.pt")["step"] == 13
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.parametrize("change", [{"lr": 1e-2}, {"batch_size": 16}, {"optimizer": "sgd"}])
def test_resume_refuses_a_checkpoint_of_another_run(digits, tmp_path, change):
    path = tmp_path / "ckpt.pt"
    fit(_mlp(0), digits[0], _config(path, epochs=1))
    name = next(iter(change))
    with pytest.raises(ValueError, match=rf"{name}: checkpoint .* now .*resume_strict=False"):
        fit(_mlp(0), digits[0], _config(path, resume=True, **change))
    lrs = []
    history = fit(
        _mlp(0),
        digits[0],
        _config(path, resume=True, resume_strict=False, epochs=2, **change),
        hooks=[lambda state: lrs.append(state.optimizer.param_groups[0]["lr"])],
    )
    assert len(history.epochs) == 2 and lrs[0] == change.get("lr", 3e-3)


def test_resume_refuses_a_missing_checkpoint(digits, tmp_path):
    with pytest.raises(ValueError, match="checkpoint_path=.*typo.pt.* does not exist"):
        fit(_mlp(0), digits[0], _config(tmp_path / "typo.pt", resume=True))


class _NanAt(CrossEntropy):
    def __init__(self, step):
        self.step, self.calls = step, 0

    def __call__(self, model, batch):
        self.calls += 1
        loss, metrics = super().__call__(model, batch)
        return (loss * float("nan") if self.calls == self.step else loss), metrics


def test_a_non_finite_loss_stops_with_the_history_and_keeps_the_last_finite_checkpoint(digits, tmp_path):
    path = tmp_path / "ckpt.pt"
    model = _mlp(0)
    with pytest.raises(FloatingPointError, match="loss=nan at step 25 .*stop_on_nonfinite") as caught:
        fit(model, digits[0], _config(path), objective=_NanAt(25))
    assert caught.value.history.num_steps == 24 and len(caught.value.history.epochs) == 3
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert train.read_checkpoint(path)["step"] == 20
    history = fit(_mlp(0), digits[0], _config(path, stop_on_nonfinite=False), objective=_NanAt(25))
    assert history.num_steps == 40
