import dataclasses
import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import modlearn as ml
from modlearn import local
from modlearn.local import LocalConfig, LocalNet, SavedTensorMeter


@pytest.fixture(scope="module")
def digits():
    return ml.load_dataset("digits", verbose=False)


@pytest.fixture(scope="module")
def few_digits(digits):
    return dataclasses.replace(digits, train=digits.train.subset(256), val=digits.val.subset(64))


def _mlp(ds, seed=0, hidden=(32, 32, 32, 32)):
    torch.manual_seed(seed)
    return ml.make_model("mlp", ds.input_shape, ds.num_classes, hidden=hidden)


def _cnn(ds, seed=0, channels=(8, 8, 8, 8)):
    torch.manual_seed(seed)
    return ml.make_model("cnn", ds.input_shape, ds.num_classes, channels=channels)


def _batch(ds, n=64):
    return ds.train.x[:n], ds.train.y[:n]


# --------------------------------------------------------------------------- gradient isolation


def test_dgl_loss_of_module_k_reaches_only_module_k(digits):
    net = LocalNet(_cnn(digits), digits.input_shape, digits.num_classes)
    current = {"k": None}
    for k, head in enumerate(net.heads):
        head.register_forward_hook(lambda module, args, out, k=k: current.update(k=k))
    touched: dict[int, set] = {}
    owner = {id(p): k for k, stage in enumerate(net.stages) for p in stage.parameters()}
    for p in net.parameters():
        p.register_post_accumulate_grad_hook(lambda p: touched.setdefault(id(p), set()).add(current["k"]))
    local.DecoupledObjective()(net, _batch(digits))
    assert set(owner) <= set(touched), "some block received no gradient at all"
    for pid, k in owner.items():
        assert touched[pid] == {k}, (
            f"a parameter of module {k} got gradient from the losses of modules {touched[pid]}"
        )


def test_decoupled_gradients_are_each_module_s_own_loss_and_leave_the_net_alone(digits):
    net = LocalNet(_mlp(digits), digits.input_shape, digits.num_classes, num_modules=2)
    x, y = _batch(digits)
    before = {name: p.detach().clone() for name, p in net.named_parameters()}
    grads = local.decoupled_gradients(net, x, y)
    assert all(p.grad is None and p.equal(before[name]) for name, p in net.named_parameters())
    first = net.stages[0]
    own = torch.autograd.grad(F.cross_entropy(net.heads[0](first(x)), y), list(first.parameters()))
    names = [f"model.blocks.{i}" for i in range(net.bounds[0][1])]
    stage_grads = [g for name, g in grads.items() if name.rsplit(".", 2)[0] in names]
    assert len(stage_grads) == len(own) and all(
        torch.allclose(a, b) for a, b in zip(stage_grads, own, strict=True)
    )


def test_ff_layer_loss_is_low_when_positives_are_good_and_negatives_are_not():
    theta, ones = 2.0, torch.ones(3, 4)
    loss = local.ff_layer_loss(2 * ones, 0 * ones, theta)  # goodness 4 for positives, 0 for negatives
    assert loss.item() == pytest.approx(2 * F.softplus(torch.tensor(-2.0)).item())
    assert local.ff_layer_loss(0 * ones, 2 * ones, theta) > loss


def test_dgl_reports_the_last_stage_loss_as_validation_does(digits):
    net = LocalNet(_mlp(digits), digits.input_shape, digits.num_classes)
    x, y = _batch(digits)
    loss, metrics = local.DecoupledObjective()(net, (x, y))
    with torch.no_grad():
        expected = F.cross_entropy(net(x), y)
    stage_losses = [metrics[f"loss_{k}"] for k in range(len(net.stages))]
    assert torch.allclose(loss, expected) and torch.allclose(loss, stage_losses[-1])
    assert torch.allclose(metrics["loss_sum"], sum(stage_losses))


@pytest.mark.parametrize(
    "mode, names",
    [
        ("e2e", ["train", "probe 1", "probe 2", "probe 3"]),
        ("dgl", ["train"]),
        ("greedy", ["module 1", "module 2", "module 3", "module 4"]),
        ("kernel", ["hidden module", "output layer"]),
    ],
)
def test_step_budgets_count_every_fit_and_time_per_step_counts_the_training_fits(few_digits, mode, names):
    train = ml.TrainConfig(epochs=None, max_steps=3, progress=False)
    run = local.train_local(_mlp(few_digits), few_digits, LocalConfig(mode), train)
    assert list(run.histories) == names
    assert run.steps == 3 * len(names)
    training = [h for name, h in run.histories.items() if not name.startswith("probe")]
    seconds = sum(row["seconds"] for h in training for row in h.epochs)
    assert local.seconds_per_step(run) == pytest.approx(seconds / (3 * len(training)))
    row = local.measure(run, few_digits)
    assert row["seconds_per_step"] == local.seconds_per_step(run)
    assert row["test_acc"] == ml.evaluate(run.model, few_digits)["acc"]
    table = local.format_comparison({mode: row})
    assert f"{1000 * row['seconds_per_step']:.1f}" in table.splitlines()[1]


def test_e2e_probes_train_the_step_budget(few_digits, monkeypatch):
    budgets = []
    fit = local.train.fit
    monkeypatch.setattr(local.train, "fit", lambda *a, **kw: budgets.append(a[2]) or fit(*a, **kw))
    train = ml.TrainConfig(epochs=None, max_steps=5, progress=False)
    local.train_local(_mlp(few_digits), few_digits, LocalConfig("e2e"), train)
    assert [(c.epochs, c.max_steps) for c in budgets] == [(None, 5)] * 4


def test_greedy_frozen_blocks_stay_bit_identical(few_digits, monkeypatch):
    digits = few_digits
    model = _cnn(digits)  # BatchNorm: running statistics must not move either
    snapshots, first = [], []
    real_fit = local.train.fit

    def spy(module, *args, **kwargs):
        first.append(first[0] if first else module[0][0])  # greedy fits Sequential(stage, head)
        snapshots.append({k: v.clone() for k, v in first[0].state_dict().items()})
        return real_fit(module, *args, **kwargs)

    monkeypatch.setattr(local.train, "fit", spy)
    run = local.train_local(
        model, digits, LocalConfig(mode="greedy"), ml.TrainConfig(epochs=1, progress=False)
    )
    assert len(snapshots) == 4 and first[0] is run.model.blocks[0]
    trained_first = snapshots[1]  # after module 1 trained, before module 2 starts
    assert any(
        not torch.equal(a, b) for a, b in zip(snapshots[0].values(), trained_first.values(), strict=True)
    )
    for later in snapshots[2:] + [run.model.blocks[0].state_dict()]:
        for key, value in trained_first.items():
            assert torch.equal(value, later[key]), f"frozen block 0 changed: {key}"


# --------------------------------------------------------------------------- the Method API


@pytest.mark.parametrize("mode", ["e2e", "greedy", "dgl", "kernel", "ff"])
def test_every_mode_trains_a_copy_and_its_hooks_reach_every_fit(few_digits, mode):
    model = _mlp(few_digits, hidden=(16, 16, 16))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    steps = []  # a function hook is called after every step; each fit counts its steps from 1
    train = ml.TrainConfig(epochs=None, max_steps=4, progress=False)
    run = local.train_local(
        model,
        few_digits,
        LocalConfig(mode, num_modules=3),
        train,
        hooks=[lambda state: steps.append(state.step)],
    )
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items()), "the given model changed"
    assert run.model is not model and run.extras.block_model is not model
    assert steps.count(1) == len(run.histories) and len(steps) == run.steps
    assert run.history is run.histories.get("train", list(run.histories.values())[-1])
    assert run.extras.mode == mode and run.method == "local"
    assert (run.extras.net is None) == (mode in ("kernel", "ff"))


def _plain(kind: str) -> nn.Sequential:
    """What a learner writes without modlearn: a plain nn.Sequential MLP or CNN for 1x8x8 digits."""
    torch.manual_seed(0)
    if kind == "mlp":
        layers = [nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.Tanh(), nn.Linear(64, 10)]
        return nn.Sequential(*layers)
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 4 * 4, 10),
    )


@pytest.mark.parametrize(
    "kind, mode, aux_head",
    [
        ("mlp", "dgl", "mlp"),
        ("mlp", "greedy", "linear"),
        ("mlp", "e2e", "linear"),
        ("mlp", "kernel", "linear"),
        ("mlp", "ff", "linear"),
        ("cnn", "dgl", "conv"),
        ("cnn", "greedy", "mlp"),
    ],
)
def test_a_learners_plain_sequential_trains_in_every_mode_that_allows_it(digits, kind, mode, aux_head):
    model = _plain(kind)
    x = digits.test.x[:16]
    before = model(x).detach()
    steps = 300 if mode == "ff" else 80
    lr = 0.03 if mode == "ff" else 3e-3
    train = ml.TrainConfig(epochs=None, max_steps=steps, lr=lr, batch_size=64, progress=False, seed=0)
    run = local.train_local(model, digits, LocalConfig(mode, aux_head=aux_head), train)
    assert torch.equal(model(x), before), "the learner's model changed"
    acc = ml.evaluate(run.model, digits.test)["acc"]
    assert acc > 0.5, f"{mode} on a plain {kind} Sequential: test accuracy {acc:.2f}"
    if run.extras.net is not None:  # the auxiliary heads were sized by a trial forward pass
        assert local.module_accuracies(run, digits.test)[-1] == pytest.approx(acc)
        assert type(run.model) is nn.Sequential and torch.equal(run.model(x), run.extras.net(x))


def test_the_kernel_method_s_model_is_its_blocks_and_new_output_layer(few_digits):
    train = ml.TrainConfig(epochs=None, max_steps=30, lr=3e-3, progress=False, seed=0)
    run = local.train_local(_mlp(few_digits, hidden=(32, 32)), few_digits, LocalConfig("kernel"), train)
    blocks = run.extras.block_model
    x = few_digits.test.x[:8]
    assert all(a is b for a, b in zip(run.model.blocks, blocks.blocks, strict=True))
    hidden = F.normalize(blocks.blocks[1](blocks.blocks[0](x)), dim=1)
    assert torch.allclose(run.model(x), run.model.head[1](hidden))


def test_forward_forward_refuses_a_cnn_and_too_few_inputs_in_one_wording(digits):
    with pytest.raises(
        ml.ModelContractError, match=r"train_local\(model=CNN\): (needs )?an MLP.*Forward-Forward"
    ):
        local.train_local(_cnn(digits), digits, LocalConfig(mode="ff"))
    narrow = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 10))
    with pytest.raises(ml.ModelContractError, match="at least 10 inputs.*found 4"):
        local.ForwardForwardNet(narrow, 10)


# --------------------------------------------------------------------------- activation memory


def test_meter_counts_saved_activations_exactly():
    layer = nn.Linear(5, 7)
    x = torch.randn(3, 5)
    with SavedTensorMeter(exclude=list(layer.parameters())) as meter:
        loss = torch.relu(layer(x)).sum()
        peak_before_backward = meter.current
        loss.backward()
        del loss
    assert peak_before_backward == meter.peak == (3 * 5 + 3 * 7) * 4  # input of Linear + output of ReLU
    assert meter.current == 0, "saved tensors must be released after backward"


@pytest.mark.parametrize("kind, bound", [("mlp", 0.6), ("cnn", 0.8)])
def test_local_modes_hold_a_fraction_of_e2e_activations(digits, kind, bound):
    """4 blocks. In the CNN the full-resolution first block dominates, so the saving is smaller."""
    model = _mlp(digits) if kind == "mlp" else _cnn(digits)
    batch = _batch(digits, 128)
    e2e = local.activation_bytes(model, batch, LocalConfig(mode="e2e"))
    for mode in ("greedy", "dgl"):
        assert local.activation_bytes(model, batch, LocalConfig(mode=mode, num_modules=4)) <= bound * e2e, (
            mode
        )
    assert local.activation_bytes(model, batch, LocalConfig(mode="dgl", num_modules=1)) >= e2e  # K=1 is E2E


# --------------------------------------------------------------------------- kernel proxy


def test_kernel_alignment_matches_its_definition():
    torch.manual_seed(0)
    features, labels = torch.rand(6, 4), torch.tensor([0, 1, 0, 2, 1, 0])
    z = features / features.norm(dim=1, keepdim=True)
    for k_min in (0.0, -0.5):
        num = kk = tt = 0.0
        for i, j in itertools.combinations(range(6), 2):
            k, t = float(z[i] @ z[j]), 1.0 if labels[i] == labels[j] else k_min
            num, kk, tt = num + k * t, kk + k * k, tt + t * t
        expected = num / (kk * tt) ** 0.5
        assert local.kernel_alignment(features, labels, k_min).item() == pytest.approx(expected, rel=1e-6)


def test_kernel_alignment_is_maximal_for_the_label_kernel():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (40,))
    ideal = F.one_hot(labels, 4).float() * 3.0  # its cosine kernel equals the label kernel
    best = local.kernel_alignment(ideal, labels).item()
    assert best == pytest.approx(1.0, abs=1e-6)
    for _ in range(20):
        assert local.kernel_alignment(torch.rand(40, 4), labels).item() < best - 1e-3
    noisy = ideal + 0.3 * torch.rand(40, 4)
    assert local.kernel_alignment(noisy, labels).item() < best


# --------------------------------------------------------------------------- bad input


def test_bad_inputs_raise_value_errors_that_say_what_to_do(digits):
    model = _mlp(digits)
    with pytest.raises(ValueError, match="choose K between 1 and 4"):
        local.train_local(model, digits, LocalConfig(mode="dgl", num_modules=5))
    with pytest.raises(ValueError, match="mode='backprop'.*must be one of 'e2e'"):
        LocalConfig(mode="backprop")
    with pytest.raises(ml.ModelContractError, match=r"train_local\(model=Sequential\).*at least two"):
        local.train_local(nn.Sequential(nn.Flatten(), nn.Linear(64, 10)), digits)
    with pytest.raises(
        ml.ModelContractError, match=r"activation_bytes\(model=Linear\).*BlockModel\.from_sequential"
    ):
        local.activation_bytes(nn.Linear(64, 10), _batch(digits), LocalConfig())
    with pytest.raises(ValueError, match="aux_head='conv' needs image features"):
        LocalNet(model, digits.input_shape, 10, aux_head="conv")
    with pytest.raises(ValueError, match=r"hooks\[0\]"):
        local.train_local(model, digits, hooks=[3])


def test_aux_heads_fit_mlp_and_cnn_blocks(digits):
    x = _batch(digits, 8)[0]
    for model, kind in ((_mlp(digits), "mlp"), (_cnn(digits), "conv"), (_cnn(digits), "linear")):
        net = LocalNet(model, digits.input_shape, 10, num_modules=2, aux_head=kind)
        h = net.stages[0](x)
        assert net.heads[0](h).shape == (8, 10)
        assert torch.equal(net(x), model(x))
    assert local.split_blocks(8, 3) == [(0, 3), (3, 5), (5, 8)]


def test_seed_comparison_says_not_distinguishable_within_the_noise():
    assert ml.results.seed_summary([0.9, 0.92, 0.94]) == pytest.approx((0.92, 0.02))
    names = ("DGL", "E2E")
    assert local.compare_seeds([0.90, 0.92, 0.94], [0.91, 0.93, 0.95], names) == "not distinguishable"
    assert local.compare_seeds([0.90, 0.91, 0.92], [0.95, 0.96, 0.97], names) == "E2E higher"
    assert local.compare_seeds([0.95, 0.96, 0.97], [0.90, 0.91, 0.92], names) == "DGL higher"
    assert local.compare_seeds([0.9], [0.95], names) == "one seed: spread not measured"
