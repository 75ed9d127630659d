"""BIMT: function-preserving swaps, closed-form swap gains, lambda schedule, metrics, bad input."""

import re

import matplotlib
import pytest
import torch

from modlearn import bimt, viz, widgets
from modlearn.api import ModelContractError, Run
from modlearn.data import symbolic_task, two_moons
from modlearn.models import MLP, SpatialMLP
from modlearn.train import Hook, TrainConfig, fit

pytestmark = pytest.mark.usefixtures("one_torch_thread")


GEOMETRIES = [
    ("1d", [4, 20, 20, 2], {}),
    ("2d", [16, 9, 9, 5], {}),
    ("1d-folded", [8, 10, 6, 4], {"in_fold": 2, "out_fold": 2}),
    ("2d-mnist-like", [64, 25, 25, 10], {}),
]


def _model(name, widths, kwargs, seed=0):
    torch.manual_seed(seed)
    return bimt.BioMLP(widths, name.split("-")[0], **kwargs).double()


@pytest.mark.parametrize("name,widths,kwargs", GEOMETRIES, ids=[g[0] for g in GEOMETRIES])
def test_swaps_leave_the_function_unchanged(name, widths, kwargs):
    model = _model(name, widths, kwargs)
    x = torch.randn(32, widths[0], dtype=torch.float64)
    before = model(x)
    for layer in range(model.num_layers):  # one swap in every layer, inputs and outputs included
        bimt.swap_sites(model, layer, 0, model.num_sites(layer) - 1)
    assert torch.allclose(model(x), before, atol=1e-6)
    assert not torch.equal(model.in_perm, torch.arange(widths[0]))
    swaps = bimt.swap_round(model, top_k=4)
    assert swaps, "a random network should always have some wire to shorten"
    assert torch.allclose(model(x), before, atol=1e-6)


def test_swaps_with_token_embeddings_keep_the_function():
    torch.manual_seed(1)
    model = bimt.BioMLP([16, 12, 7], in_fold=2, num_tokens=7).double()
    tokens = torch.randint(0, 7, (20, 2))
    before = model(tokens)
    assert bimt.swap_round(model, top_k=6)
    assert torch.allclose(model(tokens), before, atol=1e-6)


def test_swaps_move_the_optimizer_state_with_the_weights():
    model = _model("1d", [4, 6, 2], {})
    optimizer = torch.optim.Adam(model.parameters())
    model(torch.randn(5, 4, dtype=torch.float64)).pow(2).sum().backward()
    optimizer.step()
    state = optimizer.state[model.linears[0].weight]["exp_avg"].clone()
    bimt.swap_sites(model, 1, 0, 3, optimizer)
    moved = optimizer.state[model.linears[0].weight]["exp_avg"]
    assert torch.equal(moved[0], state[3]) and torch.equal(moved[3], state[0])


@pytest.mark.parametrize("reduction,penalize_last", [("sum", True), ("mean", False)])
@pytest.mark.parametrize("name,widths,kwargs", GEOMETRIES, ids=[g[0] for g in GEOMETRIES])
def test_closed_form_gain_equals_brute_force(name, widths, kwargs, reduction, penalize_last):
    model = _model(name, widths, kwargs, seed=3)
    gen = torch.Generator().manual_seed(0)
    scales = bimt.layer_scales(model, reduction, penalize_last)
    for layer in range(model.num_layers):
        gains = bimt.swap_gains(model, layer, weight_factor=2.0, scales=scales)
        for i in torch.randint(0, model.num_sites(layer), (3,), generator=gen).tolist():
            brute = bimt.brute_force_gains(model, layer, i, 2.0, reduction, penalize_last)
            assert torch.allclose(gains[i], brute, atol=1e-9), (layer, i)


@pytest.mark.parametrize("seed", range(4))
def test_a_swap_round_never_increases_the_cost(seed):
    model = _model("2d", [16, 9, 9, 5], {}, seed=seed)
    cost = bimt.connection_cost(model).item()
    for _ in range(3):
        bimt.swap_round(model, top_k=5)
        new = bimt.connection_cost(model).item()
        assert new <= cost + 1e-9
        cost = new


def test_closed_form_and_brute_force_choose_the_same_swaps():
    fast, slow = _model("1d", [4, 20, 20, 2], {}, seed=5), _model("1d", [4, 20, 20, 2], {}, seed=5)
    assert bimt.swap_round(fast, top_k=5) == bimt.swap_round(slow, top_k=5, brute_force=True)


def test_lambda_schedule_at_the_quarter_boundaries():
    lam, total = 1e-3, 1000
    expected = {0: lam, 249: lam, 250: 10 * lam, 500: 10 * lam, 749: 10 * lam, 750: lam, 999: lam}
    for step, value in expected.items():
        assert bimt.lambda_at(step, total, lam) == pytest.approx(value)
    assert bimt.lambda_at(500, 1000, 0.01, factors=(1, 10, 100), boundaries=(0.25, 0.5)) == pytest.approx(1.0)


def test_the_schedule_hook_drives_the_objective_weight():
    data = symbolic_task("independence", n_train=16, n_test=8)
    model = bimt.BioMLP([4, 6, 2])
    config = bimt.BIMTConfig(steps=8, lam=0.5)
    objective = bimt.bimt_objective(model, data, config)
    seen = []

    class Spy(Hook):
        def on_step_end(self, state):
            seen.append(objective.weight)

    fit(
        model,
        data.train,
        TrainConfig(epochs=8, batch_size=16, progress=False),
        objective,
        hooks=[*bimt.bimt_hooks(objective, config), Spy()],
    )
    assert seen == [0.5, 5.0, 5.0, 5.0, 5.0, 0.5, 0.5, 0.5]


def _block_diagonal_net(shared: bool):
    """Two outputs, each fed by its own half of the network (plus one shared wire if asked)."""
    model = bimt.BioMLP([4, 4, 2])
    with torch.no_grad():
        for linear in model.linears:
            linear.weight.zero_()
        model.linears[0].weight[:2, :2] = 1.0
        model.linears[0].weight[2:, 2:] = 1.0
        model.linears[1].weight[0, :2] = 1.0
        model.linears[1].weight[1, 2:] = 1.0
        if shared:
            model.linears[1].weight[1, 0] = 1.0
    return model


def test_metrics_see_separate_and_shared_modules():
    separate, shared = _block_diagonal_net(False), _block_diagonal_net(True)
    assert bimt.shared_hidden_neurons(separate) == 0
    assert bimt.shared_hidden_neurons(shared) == 1
    assert bimt.newman_modularity(separate) > bimt.newman_modularity(shared)
    assert bimt.sparsity(separate) == pytest.approx(1 - 12 / 24)
    assert bimt.wire_length(separate) < bimt.wire_length(shared)


def test_strong_fraction_counts_wires_above_the_threshold_of_their_layer():
    model = _block_diagonal_net(False)
    assert bimt.strong_fraction(model) == pytest.approx(12 / 24)
    with torch.no_grad():
        model.linears[1].weight[1, 0] = 0.03  # 3 % of the layer's largest |w|
    assert bimt.strong_fraction(model) == pytest.approx(12 / 24)
    assert bimt.strong_fraction(model, threshold=0.02) == pytest.approx(13 / 24)
    assert bimt.sparsity(model, threshold=0.02) == pytest.approx(1 - 13 / 24)


def test_training_with_swaps_shortens_wires():
    data = symbolic_task("independence", n_train=64, n_test=32)
    make = lambda: bimt.BioMLP([4, 10, 10, 2])  # noqa: E731
    config = bimt.BIMTConfig(steps=200, lam=3e-3, swap_every=50)
    runs = bimt.run_ablation(make, data, ["none", "bimt"], config)
    assert runs["bimt"][1]["wire_length"] < runs["none"][1]["wire_length"]
    assert runs["bimt"][0].in_perm.tolist() != [0, 1, 2, 3] or runs["bimt"][0].out_perm.tolist() != [0, 1]


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="square"):
        bimt.BioMLP([4, 20, 2], geometry="2d")
    with pytest.raises(ValueError, match="geometry"):
        bimt.BioMLP([4, 20, 2], geometry=[torch.rand(4, 1), torch.rand(19, 1), torch.rand(2, 1)])
    with pytest.raises(ValueError, match="geometry"):
        bimt.BioMLP([4, 20, 2], geometry=[torch.rand(4, 1), torch.rand(20, 1)])
    with pytest.raises(ValueError, match="in_fold"):
        bimt.BioMLP([5, 20, 2], in_fold=2)
    with pytest.raises(ValueError, match="spacing"):
        bimt.BioMLP([4, 20, 2], spacing=-0.1)
    with pytest.raises(ValueError, match="lam"):
        bimt.BIMTConfig(lam=-1e-3)
    with pytest.raises(ValueError, match="lambda"):
        bimt.lambda_at(10, 100, -1.0)
    with pytest.raises(ValueError, match="mode"):
        bimt.BIMTConfig(mode="l2")
    with pytest.raises(ValueError, match="BioMLP"):
        bimt.connection_cost(torch.nn.Linear(3, 3))
    with pytest.raises(ValueError, match="symbolic"):
        symbolic_task("parity")


def test_tasks_have_the_paper_shapes():
    for name, (d, k) in {
        "independence": (4, 2),
        "feature_sharing": (3, 3),
        "compositionality": (4, 1),
    }.items():
        ds = symbolic_task(name, n_train=100, n_test=50)
        assert ds.train.x.shape == (100, d) and ds.test.y.shape == (50, k)
        assert ds.train.y.dtype == torch.float32 and ds.train.x.abs().max() <= 1
    x = symbolic_task("independence").train.x
    assert torch.allclose(symbolic_task("independence").train.y[:, 0], (x[:, 0] + x[:, 2]) ** 3)
    moons = two_moons(200, 0.1)
    assert moons.train.x.shape == (200, 2) and set(moons.train.y.tolist()) == {0, 1}


def test_drawing_and_movie_render_headless():
    data = symbolic_task("independence", n_train=16, n_test=8)
    model = bimt.BioMLP([4, 6, 2])
    movie = bimt.Snapshots(every=2)
    model = bimt.train_bimt(model, data, bimt.BIMTConfig(steps=4, swap_every=2), hooks=[movie]).model
    assert movie.steps == [0, 2, 4]
    masks = [torch.zeros_like(lin.weight, dtype=torch.bool) for lin in model.linears]
    fig = viz.draw_network(model, edge_mask=masks, title="t", input_names=list("abcd"))
    collections = [c for c in fig.axes[0].collections if isinstance(c, matplotlib.collections.LineCollection)]
    assert len(collections) == 1 and len(collections[0].get_segments()) > 0
    with pytest.raises(ValueError, match="edge_mask"):
        viz.draw_network(model, edge_mask=[m.T for m in masks])
    slider = widgets.network_movie(movie).children[0]
    assert (slider.min, slider.max, slider.value) == (0, 2, 2)
    anim = viz.network_animation(movie)
    assert len(list(anim.new_frame_seq())) == len(movie) and "<script" in anim.to_jshtml()
    html = viz.animation_html(anim)  # plays offline: no icon font from a CDN, no URL at all
    assert "<script" in html and "data:image/png;base64" in html
    assert not re.search(r"https?://|<i class=\"fa ", html), re.findall(r"https?://\S+|<i class=\S+", html)
    assert "\u25b6</button>" in html and "||</button>" in html  # play and pause are characters
    model_2d = bimt.BioMLP([16, 9, 4], geometry="2d")
    assert isinstance(model_2d, SpatialMLP) and model_2d.coords(1).shape == (9, 2)
    fig = viz.draw_network(model_2d, threshold=0.0)
    dots = sum(
        len(c.get_offsets())
        for c in fig.axes[0].collections
        if not isinstance(c, matplotlib.collections.LineCollection)
    )
    wires = [c for c in fig.axes[0].collections if isinstance(c, matplotlib.collections.LineCollection)]
    assert dots == sum(model_2d.widths) and len(wires[0].get_segments()) == 16 * 9 + 9 * 4
    assert tuple(fig.get_size_inches()) == (6.5, 5.5)  # the 2-D layout gets the larger canvas


def _weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_train_bimt_trains_a_copy_and_counts_its_swaps():
    data = symbolic_task("independence", n_train=32, n_test=16)
    torch.manual_seed(0)
    given = bimt.BioMLP([4, 10, 10, 2])
    before = _weights(given)
    run = bimt.train_bimt(given, data, bimt.BIMTConfig(steps=20, swap_every=5))
    assert isinstance(run, Run) and run.method == "bimt" and run.history.num_steps == 20
    assert all(torch.equal(before[k], v) for k, v in given.state_dict().items()), "the given model changed"
    assert run.model is not given and not torch.equal(run.model.linears[0].weight, given.linears[0].weight)
    assert run.extras.config.steps == 20 and run.extras.swaps > 0
    moved = run.model.in_perm.tolist() != [0, 1, 2, 3] or any(
        not torch.equal(a.weight.abs().sum(0), b.weight.abs().sum(0))
        for a, b in zip(run.model.linears, given.linears, strict=True)
    )
    assert moved
    no_swaps = bimt.train_bimt(given, data, bimt.BIMTConfig(mode="l1", steps=20, swap_every=5))
    assert no_swaps.extras.swaps == 0 and torch.equal(no_swaps.model.in_perm, torch.arange(4))


def test_train_bimt_refuses_an_mlp_naming_the_converter():
    data = symbolic_task("independence", n_train=16, n_test=8)
    with pytest.raises(ModelContractError, match=r"train_bimt\(model=MLP\).*bimt\.from_mlp"):
        bimt.train_bimt(MLP(4, hidden=(6,), num_classes=2), data)
    with pytest.raises(ValueError, match=r"hooks\[0\]"):
        bimt.train_bimt(torch.nn.Linear(3, 3), data, hooks=[1])  # hooks are checked first


@pytest.mark.parametrize("activation", [torch.nn.SiLU(), torch.nn.LeakyReLU(0.3)])
def test_from_mlp_takes_a_plain_sequential_and_to_mlp_folds_the_swaps_back(activation):
    torch.manual_seed(0)
    seq = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(4, 6),
        activation,
        torch.nn.Linear(6, 5),
        activation,
        torch.nn.Linear(5, 3),
    )
    x = torch.randn(10, 4)
    bio = bimt.from_mlp(seq)
    assert bio.widths == [4, 6, 5, 3] and torch.allclose(bio(x), seq(x), atol=1e-6)
    bimt.swap_sites(bio, 0, 0, 3)
    bimt.swap_sites(bio, 1, 1, 4)
    bimt.swap_sites(bio, 3, 0, 2)
    assert torch.allclose(bio(x), seq(x), atol=1e-6)
    if isinstance(activation, torch.nn.SiLU):  # an MLP's activation is built without arguments
        assert torch.allclose(bimt.to_mlp(bio)(x), seq(x), atol=1e-6)


def test_from_mlp_refuses_what_is_no_mlp():
    conv = torch.nn.Sequential(
        torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(8, 2)
    )
    with pytest.raises(ModelContractError, match=r"from_mlp.*Linear"):
        bimt.from_mlp(conv)
    mixed = torch.nn.Sequential(
        torch.nn.Linear(4, 4), torch.nn.ReLU(), torch.nn.Linear(4, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)
    )
    with pytest.raises(ModelContractError, match="one activation"):
        bimt.from_mlp(mixed)
