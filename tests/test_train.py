import pytest
import torch
from conftest import InterruptAt

import modlearn as ml
from modlearn.train import CrossEntropy, TrainConfig, fit, load_checkpoint


@pytest.fixture(scope="module")
def digits():
    return ml.load_dataset("digits", verbose=False)


def _mlp(ds, seed=0):
    torch.manual_seed(seed)
    return ml.make_model("mlp", ds.input_shape, hidden=(64, 64))


def test_a_model_learns_digits(digits):
    model = _mlp(digits)
    before = ml.evaluate(model, digits)["acc"]
    history = fit(model, digits, TrainConfig(epochs=8, progress=False))
    after = ml.evaluate(model, digits)["acc"]
    assert before < 0.3 and after > 0.9
    assert history.num_steps == 8 * 10 and len(history.epochs) == 8
    assert history.epochs[-1]["val_acc"] > 0.9
    assert history.epochs[-1]["train_loss"] < history.epochs[0]["train_loss"]


def test_resume_continues_the_same_run(digits, tmp_path):
    straight = _mlp(digits)
    fit(straight, digits, TrainConfig(epochs=4, progress=False))
    path = tmp_path / "ckpt.pt"
    first = _mlp(digits)
    fit(first, digits, TrainConfig(epochs=2, progress=False, checkpoint_path=str(path)))
    resumed = _mlp(digits, seed=123)  # different init: everything must come from the checkpoint
    history = fit(
        resumed, digits, TrainConfig(epochs=4, progress=False, checkpoint_path=str(path), resume=True)
    )
    assert [row["epoch"] for row in history.epochs] == [1, 2, 3, 4]
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    state = torch.load(path, weights_only=True)
    assert state["epoch"] == 4


def test_interrupt_returns_partial_history_and_trained_weights(digits, tmp_path):
    model = _mlp(digits)
    initial = [p.clone() for p in model.parameters()]
    path = tmp_path / "interrupted.pt"
    history = fit(
        model,
        digits,
        TrainConfig(epochs=5, progress=False, checkpoint_path=str(path)),
        hooks=[InterruptAt(13)],
    )
    assert history.interrupted and history.num_steps == 13
    assert any(not torch.equal(a, b) for a, b in zip(initial, model.parameters(), strict=True))
    restored = _mlp(digits, seed=9)
    epoch, step = load_checkpoint(path, restored)
    assert step == 13
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), restored.state_dict().values(), strict=True)
    )


def test_hooks_and_callables_are_called(digits):
    seen = []
    fit(
        _mlp(digits),
        digits,
        TrainConfig(epochs=1, max_steps=3, progress=False),
        hooks=[lambda s: seen.append(s.step)],
    )
    assert seen == [1, 2, 3]


def test_params_limits_what_is_trained(digits):
    model = _mlp(digits)
    frozen = [p.clone() for p in model.blocks[0].parameters()]
    fit(model, digits, TrainConfig(epochs=1, progress=False), params=model.head.parameters())
    assert all(torch.equal(a, b) for a, b in zip(frozen, model.blocks[0].parameters(), strict=True))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"epochs": 0}, "epochs"),
        ({"lr": -1}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"resume": True}, "checkpoint_path"),
        ({"grad_clip": 0}, "grad_clip"),
    ],
)
def test_bad_configs_raise_value_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)


def test_bad_data_and_frozen_model_raise_value_error(digits):
    with pytest.raises(ValueError, match="Dataset"):
        fit(_mlp(digits), "digits", TrainConfig(progress=False))
    model = _mlp(digits).requires_grad_(False)
    with pytest.raises(ValueError, match="requires_grad"):
        fit(model, digits, TrainConfig(progress=False))


def test_regularized_objective_adds_the_penalty(digits):
    model = _mlp(digits)
    batch = (digits.train.x[:32], digits.train.y[:32])
    reg = ml.train.Regularized(
        CrossEntropy(), lambda m: sum(p.abs().sum() for p in m.parameters()), 0.01, "l1"
    )
    loss, metrics = reg(model, batch)
    assert torch.isclose(loss, metrics["task_loss"] + 0.01 * metrics["l1"])
    assert reg.task.__class__ is CrossEntropy
    with pytest.raises(ValueError):
        ml.train.Regularized(CrossEntropy(), lambda m: 0, -1.0)


def test_conv_models_train_channels_last_with_the_same_function(digits):
    channels_last = torch.channels_last
    torch.manual_seed(0)
    cnn = ml.make_model("cnn", digits.input_shape, channels=(8, 16)).eval()
    x = digits.test.x[:64]
    before = cnn(x)
    assert torch.allclose(
        cnn.to(memory_format=channels_last)(x.contiguous(memory_format=channels_last)), before, atol=1e-5
    )
    accs = {}
    for flag in (None, False):
        torch.manual_seed(0)
        model = ml.make_model("cnn", digits.input_shape, channels=(8, 16))
        fit(model, digits, TrainConfig(epochs=5, progress=False, channels_last=flag))
        assert model.blocks[1][0].weight.is_contiguous(memory_format=channels_last) == (flag is None)
        accs[flag] = ml.evaluate(model, digits)["acc"]
    assert accs[None] > 0.5 and abs(accs[None] - accs[False]) < 0.05


def test_a_budget_in_steps_trains_exactly_that_many_steps_on_any_data_size():
    x, y = torch.randn(50, 4), torch.randint(0, 3, (50,))
    model = torch.nn.Linear(4, 3)
    history = fit(model, (x, y), TrainConfig(epochs=None, max_steps=23, batch_size=8, progress=False))
    assert history.num_steps == 23 and len(history.epochs) == 4  # 7 batches an epoch: 7 + 7 + 7 + 2
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig(epochs=None)
