"""Circuit discovery (modlearn/circuits/) and notebook 07."""

import pytest
import torch
import torch.nn as nn

from modlearn import circuits as C
from modlearn.api import ModelContractError
from modlearn.models import MLP

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _set_weights(model: MLP, weights: list[list[list[float]]]) -> MLP:
    linears, _ = C.model_linears(model)
    with torch.no_grad():
        for lin, w in zip(linears, weights, strict=True):
            lin.weight.copy_(torch.tensor(w))
            lin.bias.zero_()
    return model


def _two_branch_network() -> tuple[MLP, list[torch.Tensor]]:
    """[4, 4, 4, 2] ReLU net: inputs 0-1 -> neurons 0-1 -> output 0; the rest only feeds output 1.

    Returns the model and the edges output 0 depends on (bool masks shaped like the weights).
    """
    w0 = [[1.0, 0.8, 0, 0], [0.7, -1.0, 0, 0], [0, 0, 1.0, 0.5], [0.3, 0, 0.6, -1.0]]
    w1 = [[0.9, 1.1, 0, 0], [0, 0, 0, 0], [0.4, 0, 1.0, 0.7], [0, 0, -0.8, 1.0]]
    w2 = [[1.0, 0, 0, 0], [0.5, 0, 1.0, -1.0]]
    model = _set_weights(MLP(4, hidden=(4, 4), num_classes=2), [w0, w1, w2])
    relevant = [
        torch.zeros(4, 4, dtype=torch.bool),
        torch.zeros(4, 4, dtype=torch.bool),
        torch.zeros(2, 4, dtype=torch.bool),
    ]
    relevant[0][0, :2] = relevant[0][1, :2] = True
    relevant[1][0, :2] = True
    relevant[2][0, 0] = True
    return model, relevant


def _random_network(seed: int = 0, widths=(6, 5, 4, 3)) -> MLP:
    torch.manual_seed(seed)
    return MLP(widths[0], hidden=widths[1:-1], num_classes=widths[-1])


def _batches(n: int = 64, features: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, features, generator=gen), torch.randn(n, features, generator=gen)


def test_acdc_removes_exactly_the_irrelevant_subnetwork():
    model, relevant = _two_branch_network()
    clean, corrupt = _batches()
    for ablation in ("patch", "zero"):
        problem = C.PatchingProblem(model, clean, corrupt, output=0, metric="mse", ablation=ablation)
        circuit = C.acdc(problem, tau=0.02)
        for layer, (kept, want) in enumerate(zip(circuit.masks, relevant, strict=True)):
            assert torch.equal(kept, want), (
                f"{ablation}, layer {layer}: kept\n{kept.int()}\nwanted\n{want.int()}"
            )
        assert circuit.faithfulness == pytest.approx(1.0, abs=1e-12)


def test_circuit_overlap_counts_the_shared_hidden_neurons():
    model, _ = _two_branch_network()
    clean, corrupt = _batches()
    found = C.discover_outputs({"net": model}, {0: (clean, corrupt), 1: (clean, corrupt)}, tau=0.0)
    # output 1 reads hidden neuron 0 of layer 2 (weight 0.5), which is output 0's,
    # fed by neurons 0-1 of layer 1
    assert C.circuit_overlap(found[("net", 0)], found[("net", 1)]) == 3
    assert C.summarize(found)["net"]["shared_neurons"] == 3


def test_full_circuit_reproduces_the_model_exactly():
    model = _random_network()
    clean, corrupt = _batches(features=6)
    problem = C.PatchingProblem(model, clean, corrupt, output=None, metric="kl")
    every_edge = C.Circuit([torch.ones_like(w, dtype=torch.bool) for w in problem.net.weights], 0.0, "all")
    assert torch.equal(C.circuit_output(problem, every_edge), problem.full.out)  # float64 arithmetic
    assert torch.allclose(C.circuit_output(problem, every_edge), model(clean).double(), atol=1e-6)
    assert float(problem.metric(problem.run(problem.all_edges()).out)) == 0.0
    zero = C.PatchingProblem(model, clean, None, output=1, ablation="zero")
    assert torch.equal(C.apply_circuit(model, every_edge, zero)(clean), model(clean))


def test_tau_zero_removes_only_edges_without_effect():
    model = _random_network(seed=3)
    with torch.no_grad():  # a dead hidden neuron and a zero weight: edges with no effect
        model.blocks[0][1].weight[2].zero_()
        model.blocks[0][1].bias[2] = -1.0
        model.blocks[1][0].weight[1, 3] = 0.0
    clean, corrupt = _batches(features=6, seed=1)
    problem = C.PatchingProblem(model, clean, corrupt, output=2, metric="mse")
    circuit = C.acdc(problem, tau=0.0)
    assert circuit.metric == pytest.approx(0.0, abs=1e-12)
    effects = [problem.edge_effects(problem.all_edges(), layer) for layer in range(3)]
    removed = [~m for m in circuit.masks]
    assert sum(int(r.sum()) for r in removed) > 0, "the test network must have edges without effect"
    for layer, (eff, gone) in enumerate(zip(effects, removed, strict=True)):
        assert eff[gone].abs().max() <= C.ROUND_OFF, f"layer {layer}: an edge with an effect was removed"
        assert (eff[~gone] > C.ROUND_OFF).all(), f"layer {layer}: an edge without effect was kept"


@pytest.mark.parametrize("metric,output", [("mse", 1), ("kl", None), ("logit_diff", 0)])
@pytest.mark.parametrize("ablation", ["patch", "zero", "mean"])
def test_vectorized_patching_equals_one_edge_at_a_time(metric, output, ablation):
    model = _random_network(seed=1)
    clean, corrupt = _batches(n=12, features=6, seed=2)
    problem = C.PatchingProblem(model, clean, corrupt, output=output, metric=metric, ablation=ablation)
    masks = problem.all_edges()
    masks[0][1, 2] = masks[1][3, 0] = 0.0  # a partial circuit, not only the full model
    for layer in range(3):
        fast, slow = problem.edge_effects(masks, layer), problem.edge_effects_loop(masks, layer)
        assert torch.allclose(fast, slow, rtol=1e-9, atol=1e-12), (
            f"layer {layer}: {(fast - slow).abs().max()}"
        )
    for tau in (0.0, 0.003, 0.03, 0.3):
        fast, slow = C.acdc(problem, tau), C.acdc(problem, tau, vectorized=False)
        assert all(torch.equal(a, b) for a, b in zip(fast.masks, slow.masks, strict=True)), (
            f"tau={tau}: decisions differ"
        )


def test_vectorized_acdc_decides_like_the_loop_on_a_wider_network():
    model = _random_network(seed=5, widths=(10, 8, 6, 3))
    clean, corrupt = _batches(n=20, features=10, seed=4)
    problem = C.PatchingProblem(model, clean, corrupt, output=None, metric="kl")
    for tau in (0.002, 0.02):
        fast, slow = C.acdc(problem, tau), C.acdc(problem, tau, vectorized=False)
        assert all(torch.equal(a, b) for a, b in zip(fast.masks, slow.masks, strict=True)), (
            f"tau={tau}: decisions differ"
        )
        assert fast.metric == pytest.approx(slow.metric, abs=1e-9)


def test_patched_linear_sends_the_reference_through_removed_edges_only():
    gen = torch.Generator().manual_seed(0)
    h, r = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    w, b = torch.randn(3, 4, generator=gen), torch.randn(3, generator=gen)
    kept = torch.ones(3, 4)
    assert torch.allclose(C.patched_linear(h, w, b, kept, r), h @ w.T + b)
    assert torch.allclose(C.patched_linear(h, w, b, torch.zeros(3, 4), r), r @ w.T + b)
    one_removed = kept.clone()
    one_removed[2, 1] = 0.0
    expected = h @ w.T + b
    expected[:, 2] -= w[2, 1] * (h[:, 1] - r[:, 1])
    assert torch.allclose(C.patched_linear(h, w, b, one_removed, r), expected)


def test_attribution_is_exact_on_a_linear_network():
    torch.manual_seed(0)
    model = MLP(6, hidden=(5, 4), num_classes=3, activation=nn.Identity)
    clean, corrupt = _batches(n=16, features=6)
    problem = C.PatchingProblem(model, clean, corrupt, output=1, metric="mse")
    for layer, score in enumerate(C.attribution_scores(problem)):
        assert torch.allclose(
            score / problem.scale, problem.edge_effects(problem.all_edges(), layer), atol=1e-12
        )


def test_mean_ablated_circuit_applies_as_a_model():
    model = _random_network(seed=4)
    clean, corrupt = _batches(features=6, seed=3)
    problem = C.PatchingProblem(model, clean, corrupt, output=0, metric="mse", ablation="mean")
    circuit = C.acdc(problem, tau=0.05)
    assert 0 < circuit.edges < problem.net.num_edges
    pruned = C.apply_circuit(model, circuit, problem)
    assert torch.allclose(pruned(clean).double(), C.circuit_output(problem, circuit), atol=1e-5)
    with pytest.raises(ValueError, match="corrupted inputs"):
        C.apply_circuit(model, circuit, C.PatchingProblem(model, clean, corrupt, output=0))


def test_bad_input_raises_value_error():
    model = _random_network()
    clean, corrupt = _batches(features=6)
    with pytest.raises(ValueError, match="out of range"):
        C.PatchingProblem(model, clean, corrupt, output=3)
    with pytest.raises(ValueError, match="same shape"):
        C.PatchingProblem(model, clean, corrupt[:10], output=0)
    problem = C.PatchingProblem(model, clean, corrupt, output=0)
    with pytest.raises(ValueError, match="tau"):
        C.acdc(problem, tau=-0.1)
    with pytest.raises(ValueError, match="tau"):
        C.ACDCConfig(tau=-1.0)
    with pytest.raises(ValueError, match="metric"):
        C.PatchingProblem(model, clean, corrupt, metric="accuracy")
    with pytest.raises(ModelContractError, match="circuit discovery"):
        C.as_linear_net(nn.Conv2d(1, 1, 3))


def test_a_plain_sequential_mlp_is_read_like_the_mlp_it_equals():
    model = _random_network(seed=2)
    seq = nn.Sequential(
        nn.Flatten(),
        *[layer for block in model.blocks for layer in block if not isinstance(layer, nn.Flatten)],
        model.head,
    )
    clean, corrupt = _batches(features=6, seed=5)
    mine, theirs = (
        C.PatchingProblem(seq, clean, corrupt, output=1),
        C.PatchingProblem(model, clean, corrupt, output=1),
    )
    assert torch.equal(mine.full.out, theirs.full.out)
    assert torch.allclose(mine.full.out, seq(clean).double(), atol=1e-6)
    found, expected = C.acdc(mine, 0.01), C.acdc(theirs, 0.01)
    assert 0 < found.edges < mine.net.num_edges
    assert all(torch.equal(a, b) for a, b in zip(found.masks, expected.masks, strict=True))
