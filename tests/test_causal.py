"""Modular-DCM (modlearn.causal): graphs, training order, frozen modules, interventions, notebook 08."""

import inspect
import typing
from dataclasses import replace

import numpy as np
import pytest
import torch

import modlearn as ml
from modlearn import causal
from modlearn.train import Hook, TrainConfig

TINY = dict(noise_dim=4, confounder_dim=4, hidden=(16,), critic_hidden=(16,))
TRAIN = causal.dcm_train_config(lr=1e-2, batch_size=64, max_steps=6, seed=0)


def front_door_dcm(**overrides):
    scm, graph = causal.front_door_scm()
    config = causal.DCMConfig(**{**TINY, **overrides})
    return scm, causal.DCM(graph, [causal.Variable(v) for v in "XZY"], config)


# --------------------------------------------------------------------------- graphs

KNOWN = {
    "front-door": (
        "X -> Z, Z -> Y, X <-> Y",
        [("X", "Y"), ("Z",)],
        [(("Z",), ("X", "Y"))],
        [(("Z",), ("Z",), ("X",)), (("X", "Y"), ("X", "Z", "Y"), ())],
    ),
    "diamond": (
        "A -> B, A -> C, B -> D, C -> D, A <-> D",
        [("A", "D"), ("B",), ("C",)],
        [(("B",), ("A", "D")), (("C",), ("A", "D"))],
        [(("B",), ("B",), ("A",)), (("C",), ("C",), ("A",)), (("A", "D"), ("A", "B", "C", "D"), ())],
    ),
    "napkin": (
        "W -> Z, Z -> X, X -> Y, W <-> X, W <-> Y",
        [("W", "X", "Y"), ("Z",)],
        [(("Z",), ("W", "X", "Y"))],
        [(("Z",), ("Z",), ("W",)), (("W", "X", "Y"), ("W", "Z", "X", "Y"), ())],
    ),
    "c-component cycle": (
        "A -> B, B -> C, C -> D, A <-> C, B <-> D",
        [("A", "C"), ("B", "D")],
        [],
        [(("A", "B", "C", "D"), ("A", "B", "C", "D"), ())],
    ),
}


@pytest.mark.parametrize("name", list(KNOWN))
def test_c_components_h_graph_and_training_order(name):
    text, comps, h_edges, steps = KNOWN[name]
    graph = causal.CausalGraph.parse(text)
    assert graph.c_components() == comps
    h = graph.h_graph()
    assert sorted(h.edges) == sorted(h_edges)
    assert [(s.generators, s.variables, s.conditions) for s in graph.training_steps()] == steps


def test_cycle_of_c_components_is_merged_in_the_h_graph():
    graph = causal.CausalGraph.parse("A -> B, B -> C, C -> D, A <-> C, B <-> D")
    assert list(graph.h_graph().nodes) == [("A", "B", "C", "D")]


def test_scalability_groups_are_smaller_than_the_graph():
    rows = causal.scalability_table((15, 30), graphs_per_size=2, seed=0)
    assert all(1 <= r["largest_group"] < r["nodes"] for r in rows)
    assert all(r["largest_group"] <= r["largest_training_set"] <= r["nodes"] for r in rows)


# --------------------------------------------------------------------------- training


class FrozenWatch(Hook):
    """Compares the watched generators' parameters with a snapshot after every step."""

    def __init__(self, dcm, names):
        self.dcm, self.names, self.changed = dcm, names, []

    def on_fit_start(self, state):
        self.snapshot = {
            n: [p.detach().clone() for p in self.dcm.generators[n].parameters()] for n in self.names
        }

    def on_step_end(self, state):
        for n in self.names:
            now = list(self.dcm.generators[n].parameters())
            if not all(torch.equal(a, b) for a, b in zip(self.snapshot[n], now, strict=True)):
                self.changed.append((state.step, n))


def test_earlier_generators_stay_bit_identical_while_a_later_group_trains():
    scm, dcm = front_door_dcm()
    data = scm.sample(500, seed=0)
    first, second = dcm.graph.training_steps()
    causal.train_step(dcm, first, data, train=TRAIN)
    before_x = [p.detach().clone() for p in dcm.generators["X"].parameters()]
    watch = FrozenWatch(dcm, ["Z"])
    causal.train_step(dcm, second, data, train=TRAIN, hooks=[watch])
    assert watch.changed == []
    assert not all(torch.equal(a, b) for a, b in zip(before_x, dcm.generators["X"].parameters(), strict=True))


def test_modular_training_trains_every_group_once_and_skips_pretrained():
    scm, dcm = front_door_dcm()
    data = scm.sample(300, seed=0)
    run = causal.train_dcm(dcm, data, train=TRAIN)
    assert list(run.histories) == ["Z", "X,Y"] and run.extras.steps == [("Z",), ("X", "Y")]
    assert run.history is run.histories["X,Y"] and run.extras.mode == "modular" and run.method == "dcm"
    scm, dcm = front_door_dcm()
    dcm.plug_in("Z", dcm._new_generator("Z"))
    pretrained_z = {k: v.clone() for k, v in dcm.generators["Z"].state_dict().items()}
    run = causal.train_dcm(dcm, data, train=TRAIN)
    assert list(run.histories) == ["X,Y"]
    assert all(torch.equal(pretrained_z[k], v) for k, v in run.model.generators["Z"].state_dict().items())
    assert list(causal.train_dcm(dcm, data, train=TRAIN, mode="joint").histories) == ["X,Y"]
    with pytest.raises(ValueError, match="pretrained"):
        causal.train_step(dcm, dcm.graph.training_steps()[0], data, train=TRAIN)


def test_gumbel_temperature_anneals_to_its_floor():
    scm, dcm = front_door_dcm(anneal_every=10, tau_rate=1.0, tau_floor=0.2)
    run = causal.train_dcm(dcm, scm.sample(300, seed=0), train=replace(TRAIN, max_steps=30), mode="joint")
    assert run.model.tau == pytest.approx(0.2)
    assert dcm.tau == dcm.config.tau_start, "the given DCM's temperature changed"


def test_train_dcm_leaves_the_given_dcm_unchanged_and_returns_the_trained_copy():
    scm, dcm = front_door_dcm()
    before = {k: v.clone() for k, v in dcm.state_dict().items()}
    run = causal.train_dcm(dcm, scm.sample(300, seed=0), train=TRAIN)
    assert run.model is not dcm and isinstance(run.model, causal.DCM)
    assert all(torch.equal(before[k], v) for k, v in dcm.state_dict().items()), "the given DCM changed"
    assert any(not torch.equal(before[k], v) for k, v in run.model.state_dict().items())


def test_a_model_that_is_not_a_dcm_gets_the_contract_error():
    scm, _ = front_door_dcm()
    for owner, call in [
        ("train_dcm", lambda: causal.train_dcm(torch.nn.Linear(3, 3), scm.sample(10, seed=0))),
        ("train_step", lambda: causal.train_step("dcm", None, {})),
    ]:
        with pytest.raises(ml.ModelContractError, match=rf"{owner}\(model=\w+\): needs a causal\.DCM"):
            call()


def test_train_dcm_takes_the_common_method_arguments():
    params = list(inspect.signature(causal.train_dcm).parameters.values())
    assert [p.name for p in params[:4]] == ["model", "data", "config", "train"]
    assert all(p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD for p in params[:4])
    assert params[3].default is None and params[2].default is None
    assert typing.get_type_hints(causal.train_dcm)["train"] == (TrainConfig | None)
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params[4:])


class ReadBetas(Hook):
    """Records the betas of every parameter group of `fit`'s optimizer at the start and after each step."""

    def __init__(self):
        self.seen = set()

    def on_fit_start(self, state):
        self.seen.update(tuple(group["betas"]) for group in state.optimizer.param_groups)

    on_step_end = on_fit_start


@pytest.mark.parametrize("train, betas", [(None, (0.5, 0.9)), (replace(TRAIN, betas=(0.3, 0.7)), (0.3, 0.7))])
def test_the_optimizers_use_the_betas_of_train(train, betas):
    scm, dcm = front_door_dcm()
    hook = ReadBetas()
    causal.train_step(
        dcm,
        dcm.graph.training_steps()[0],
        scm.sample(100, seed=0),
        train=train and replace(train, max_steps=2),
        hooks=[hook],
    )
    assert hook.seen == {betas}
    objective = causal.WassersteinGP(
        dcm, dcm.graph.training_steps()[0], dcm.config, train or causal.dcm_train_config()
    )
    rows = causal.encode_rows(objective.columns, scm.sample(8, seed=0))
    dcm.requires_grad_(True)
    objective(causal.training._StepModel(dcm, causal.generators.mlp(rows.shape[1], (4,), 1)), (rows, None))
    assert {tuple(g["betas"]) for g in objective.critic_optimizer.param_groups} == {betas}


def test_one_checkpoint_cannot_hold_several_modular_steps(tmp_path):
    scm, dcm = front_door_dcm()
    with pytest.raises(ValueError, match="checkpoint_path"):
        causal.train_dcm(
            dcm, scm.sample(100, seed=0), train=replace(TRAIN, checkpoint_path=str(tmp_path / "c.pt"))
        )


# --------------------------------------------------------------------------- interventions and metrics


def test_do_clamps_the_variable_and_keeps_non_descendants():
    scm, dcm = front_door_dcm()
    torch.manual_seed(0)
    observed = dcm.sample(20000)
    intervened = dcm.sample(20000, do={"Z": 1})
    assert torch.all(intervened["Z"] == 1)
    p_obs = causal.empirical_distribution([observed["X"]], [2])
    p_do = causal.empirical_distribution([intervened["X"]], [2])
    assert causal.tvd(p_obs, p_do) < 0.02
    assert causal.empirical_distribution([observed["Z"]], [2])[1] < 0.99  # Z was not constant before


def test_continuous_and_image_variables_sample_with_their_shapes():
    graph = causal.CausalGraph.parse("A -> B, B -> Img, A <-> Img")
    variables = [
        causal.Variable("A", "continuous", 2),
        causal.Variable("B", "discrete", 3),
        causal.Variable("Img", "image", shape=(3, 8, 8)),
    ]
    dcm = causal.DCM(graph, variables, causal.DCMConfig(**TINY))
    s = dcm.sample(5, do={"A": [0.5, -1.0]})
    assert s["A"].shape == (5, 2) and torch.all(s["A"] == torch.tensor([0.5, -1.0]))
    assert s["B"].shape == (5,) and s["Img"].shape == (5, 3, 8, 8)
    assert 0 <= s["Img"].min() and s["Img"].max() <= 1


def test_front_door_formula_and_tabular_truth_agree():
    scm, _ = causal.front_door_scm()
    truth = scm.interventional("Y", "X")
    data = scm.sample(200_000, seed=1)
    sizes = {"X": 2, "Z": 2, "Y": 2}
    assert causal.interventional_tvd(causal.front_door(data, "X", "Z", "Y", sizes), truth) < 0.01
    assert causal.interventional_tvd(causal.naive_conditional(data, "X", "Y", sizes), truth) > 0.1
    sampled_do = scm.sample(100_000, do={"X": 1}, seed=2)["Y"]
    assert abs(sampled_do.float().mean().item() - truth[1, 1]) < 0.01


def test_gradient_penalty_at_given_points():
    from modlearn.causal.training import gradient_penalty

    critic = torch.nn.Linear(3, 1)
    with torch.no_grad():
        critic.weight.copy_(torch.tensor([[2.0, 0.0, 0.0]]))
    real, fake = torch.randn(5, 3), torch.randn(5, 3)
    for alpha in (torch.zeros(5, 1), torch.rand(5, 1), None):  # a linear critic: |grad| = |w| = 2 anywhere
        assert torch.allclose(gradient_penalty(critic, real, fake, alpha), torch.tensor(1.0))
    tanh_critic = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 1))
    at_real = gradient_penalty(tanh_critic, real, fake, torch.ones(5, 1))
    assert torch.allclose(at_real, gradient_penalty(tanh_critic, real, real.flip(0), torch.ones(5, 1)))
    assert at_real.requires_grad  # the penalty trains the critic


def test_tvd_and_kl():
    p, q = np.array([0.5, 0.5]), np.array([0.9, 0.1])
    assert causal.tvd(p, q) == pytest.approx(0.4)
    assert causal.kl(p, p) == pytest.approx(0.0)
    assert causal.kl(p, q) == pytest.approx(0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1))


# --------------------------------------------------------------------------- bad input


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="cycle"):
        causal.CausalGraph.parse("A -> B, B -> C, C -> A")
    scm, dcm = front_door_dcm()
    with pytest.raises(ValueError, match="unknown intervention variable"):
        dcm.sample(10, do={"W": 1})
    with pytest.raises(ValueError, match="takes values 0..1"):
        dcm.sample(10, do={"X": 2})
    with pytest.raises(ValueError, match="takes values 0..1"):
        scm.sample(10, do={"X": 5})
    with pytest.raises(ValueError, match="unknown variables"):
        causal.CausalGraph([("A", "B")], nodes=["A"])
    with pytest.raises(ValueError, match="cannot read edge"):
        causal.CausalGraph.parse("A => B")
    with pytest.raises(ValueError, match="takes values"):
        causal.Variable("X").encode(torch.tensor([0, 3]))
    with pytest.raises(ValueError, match="tau_floor"):
        causal.DCMConfig(tau_floor=2.0)


def test_tvd_tracker_counts_steps_across_problems_and_leaves_training_unchanged():
    torch.manual_seed(0)
    scm, dcm = front_door_dcm()
    data = scm.sample(300, seed=0)
    truth = scm.interventional("Y", "X")
    tracker = causal.TVDTracker("Y", "X", truth, every=4, n=200)
    random_states = []
    run = causal.train_dcm(
        dcm, data, train=TRAIN, hooks=[lambda state: random_states.append(torch.get_rng_state()), tracker]
    )
    assert tracker.steps == [4, 8, 12]
    assert all(0 <= t <= 1 for t in tracker.tvd)
    torch.set_rng_state(random_states[-1])  # the state the last measurement started from
    last = causal.interventional_tvd(run.model.interventional("Y", "X", 200), truth)
    assert tracker.tvd[-1] == last, "the tracker did not measure the DCM being trained"
    torch.manual_seed(0)
    _, untracked = front_door_dcm()
    plain = causal.train_dcm(untracked, data, train=TRAIN)
    assert all(
        torch.equal(a, b) for a, b in zip(run.model.parameters(), plain.model.parameters(), strict=True)
    ), "measuring the TVD changed the training"
    with pytest.raises(ValueError, match="every"):
        causal.TVDTracker("Y", "X", truth, every=0)


def test_graph_legend_names_each_group_in_training_order():
    graph = causal.CausalGraph.parse("X -> Z, Z -> Y, X <-> Y")
    fig = causal.draw_graph(graph, groups=[("Z",), ("X", "Y")])
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["1: Z", "2: X, Y"]
    assert causal.draw_graph(graph).axes[0].get_legend() is None
