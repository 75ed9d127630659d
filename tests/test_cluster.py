"""Clusterability (notebook 04): co-clustering, C, the loss, ablation, and the notebook's claims."""

import pytest
import torch
import torch.nn as nn

from modlearn import cluster, viz
from modlearn.models import MLP, ModularTransformer
from modlearn.train import TrainConfig, fit


def same_partition(found: torch.Tensor, truth: torch.Tensor) -> bool:
    """Labels equal up to renaming the clusters."""
    pairs = set(zip(found.tolist(), truth.tolist(), strict=True))
    return len(pairs) == len(set(found.tolist())) == len(set(truth.tolist()))


@pytest.mark.parametrize("seed", range(4))
def test_hidden_block_diagonal_matrix_is_recovered_exactly(seed):
    w, truth = cluster.planted_blocks(64, 48, 4, seed=seed)
    found = cluster.spectral_coclusters(w, 4, seed=seed)
    assert float(cluster.clusterability(w, found)) == pytest.approx(1.0, abs=1e-6)
    # aligned: one renaming maps the found labels onto the true ones on both sides at once
    both_found = torch.cat([found.rows, found.cols])
    both_truth = torch.cat([truth.rows, truth.cols])
    assert same_partition(both_found, both_truth)


def test_conv_layers_are_clustered_by_kernel_norms():
    w, truth = cluster.planted_blocks(16, 12, 3, seed=1)
    conv = nn.Conv2d(12, 16, 3)
    with torch.no_grad():
        conv.weight.copy_(w[:, :, None, None] * torch.randn(1, 1, 3, 3).abs().add(0.1))
    found = cluster.spectral_coclusters(conv.weight, 3)
    assert float(cluster.clusterability(conv.weight.detach(), found)) == pytest.approx(1.0, abs=1e-6)
    assert cluster.squared_edges(conv.weight).shape == (16, 12)


def test_random_matrices_sit_at_one_over_k_but_fitted_clusters_find_more():
    base = cluster.random_baselines(64, 64, 4, trials=10, seed=0)
    assert abs(base["random_assignment"] - 0.25) < 0.05
    assert 0.33 < base["fitted"] < 0.45  # about 0.38: the baseline a trained layer must beat
    assert base["fitted"] > base["random_assignment"] + 0.08


def test_clusterability_is_invariant_to_permuting_neurons_with_their_labels():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(30, 20, generator=gen)
    cc = cluster.spectral_coclusters(w, 3)
    p_out, p_in = torch.randperm(30, generator=gen), torch.randperm(20, generator=gen)
    permuted = cluster.Coclusters(cc.rows[p_out], cc.cols[p_in], 3)
    c, c_perm = cluster.clusterability(w, cc), cluster.clusterability(w[p_out][:, p_in], permuted)
    assert float(c_perm) == pytest.approx(float(c), abs=1e-6)
    shuffled_labels = cluster.Coclusters(cc.rows[p_out], cc.cols, 3)  # rows moved, labels not: differs
    assert float(cluster.clusterability(w, shuffled_labels)) != pytest.approx(float(c), abs=1e-3)


def test_one_gradient_step_on_minus_c_increases_c():
    w = torch.randn(32, 32, generator=torch.Generator().manual_seed(0), requires_grad=True)
    cc = cluster.random_coclusters(32, 32, 4)
    c0 = cluster.clusterability(w, cc)
    (-c0).backward()
    assert w.grad is not None and torch.isfinite(w.grad).all()
    inside = cc.mask()
    # right sign: descending -C grows the in-block weights and shrinks the cross-cluster ones
    assert (w.grad[inside] * w.detach()[inside] <= 0).all()
    assert (w.grad[~inside] * w.detach()[~inside] >= 0).all()
    with torch.no_grad():  # dC/dW scales as 1/|W|^2: a step of that size
        c1 = cluster.clusterability(w - 0.1 * w.pow(2).sum() * w.grad, cc)
    assert float(c1) > float(c0.detach()) + 0.02


def test_the_loss_plugs_into_fit_and_raises_c():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(256, 12, generator=gen), torch.randint(0, 4, (256,), generator=gen)
    model = MLP(12, hidden=(16, 16), num_classes=4)
    clusters = cluster.model_coclusters(model, 4)
    assert set(clusters) == {"blocks.0.1", "blocks.1.0", "head"}
    loss = cluster.ClusterabilityLoss(clusters, lam=10.0)
    value, metrics = loss(model, (x, y))
    c = cluster.model_clusterability(model, clusters).detach()
    assert value.detach().item() == pytest.approx((metrics["task_loss"] + 10.0 * (1 - c)).item(), rel=1e-5)
    fit(model, (x, y), TrainConfig(epochs=5, batch_size=64, lr=1e-2, progress=False), objective=loss)
    assert cluster.model_clusterability(model, clusters).item() > float(c) + 0.2


def test_reclustering_hook_refits_the_assignments():
    gen = torch.Generator().manual_seed(0)
    x, y = torch.randn(128, 12, generator=gen), torch.randint(0, 4, (128,), generator=gen)
    model = MLP(12, hidden=(16,), num_classes=4)
    config = cluster.ClusterConfig(k=2, lam=1.0, recluster_every=1)
    names = cluster.readable_layers(model, 2)
    start = {
        name: cluster.random_coclusters(*cluster.layer_weight(model, name).shape, k=2, seed=3)
        for name in names
    }
    run = cluster.train_cluster(model, (x, y), config, TrainConfig(epochs=1, progress=False), clusters=start)
    used = run.extras.clusters
    refit = cluster.model_coclusters(run.model, 2, names, config.seed)
    assert set(used) == set(names)
    for name in names:  # the assignments in use are those fitted to the final weights, not the random start
        assert torch.equal(used[name].rows, refit[name].rows) and torch.equal(
            used[name].cols, refit[name].cols
        )
    assert any(
        not torch.equal(used[n].rows, start[n].rows) or not torch.equal(used[n].cols, start[n].cols)
        for n in names
    )


def test_heatmap_title_reports_the_clusterability():
    w, truth = cluster.planted_blocks(12, 10, 3, noise=0.5, seed=2)
    fig = viz.cluster_heatmap(w, truth, title="w")
    expected = float(cluster.clusterability(w, truth))
    assert fig.axes[0].get_title() == f"w: C = {expected:.2f}" and 0.3 < expected < 0.99
    assert len(fig.axes[0].patches) == 3


def test_cross_cluster_ablation_zeroes_exactly_the_off_block_weights():
    model = MLP(12, hidden=(16, 16), num_classes=4)
    clusters = cluster.model_coclusters(model, 2)
    ablated = cluster.ablate_cross_cluster(model, clusters)
    for name, cc in clusters.items():
        w_old, w_new = cluster.layer_weight(model, name), cluster.layer_weight(ablated, name)
        assert cluster.clusterability(w_new, cc).item() == pytest.approx(1.0)
        assert torch.equal(w_new[cc.mask()], w_old[cc.mask()].detach())
    x = torch.randn(64, 12)
    result = cluster.cross_cluster_ablation(model, clusters, (x, torch.randint(0, 4, (64,))))
    assert set(result) == {"acc", "ablated_acc", "drop"}


def test_block_sort_puts_the_blocks_on_the_diagonal():
    w, truth = cluster.planted_blocks(12, 8, 2, seed=0)
    sorted_w, rows, cols = cluster.block_sort(w, truth)
    assert sorted(rows.tolist()) == list(range(12)) and sorted(cols.tolist()) == list(range(8))
    assert (sorted_w[:6, 4:] == 0).all() and (sorted_w[6:, :4] == 0).all()


def test_transformer_projections_are_readable_layers():
    model = ModularTransformer(p=11, dim=16, depth=1, heads=2)
    assert model(torch.randint(0, 11, (5, 2))).shape == (5, 11)
    names = cluster.readable_layers(model, 4)
    assert {"blocks.1.attn.q", "blocks.1.attn.proj", "blocks.1.mlp.fc1", "blocks.1.mlp.fc2"} <= set(names)
    clusters = cluster.model_coclusters(model, 4)
    assert 0.0 < cluster.model_clusterability(model, clusters).item() <= 1.0
    with pytest.raises(ValueError, match="integer token ids"):
        model(torch.randn(5, 2))


def test_bad_input_names_the_layer():
    model = MLP(12, hidden=(3,), num_classes=4)
    with pytest.raises(ValueError, match="k=1"):
        cluster.spectral_coclusters(torch.randn(8, 8), 1)
    with pytest.raises(ValueError, match="'blocks.0.1'.*k=4"):
        cluster.model_coclusters(model, 4, layers=["blocks.0.1"])
    with pytest.raises(ValueError, match="'blocks.0.2' is a ReLU"):
        cluster.model_coclusters(model, 2, layers=["blocks.0.2"])
    with pytest.raises(ValueError, match="no layer 'nope'"):
        cluster.layer_weight(model, "nope")
    with pytest.raises(ValueError, match="k=1"):
        cluster.ClusterConfig(k=1)
    with pytest.raises(ValueError, match="shape"):
        cluster.clusterability(torch.randn(3, 4, 5), cluster.random_coclusters(3, 4, 2))
    with pytest.raises(ValueError, match="clusters label"):
        cluster.clusterability(torch.randn(6, 4), cluster.random_coclusters(3, 4, 2))


def test_ablation_figure_shows_before_after_and_chance():
    ablations = {"E2E": {"acc": 0.9, "ablated_acc": 0.2}, "λ=40": {"acc": 0.8, "ablated_acc": 0.7}}
    ax = cluster.plot_ablation(ablations, chance=0.1).axes[0]
    heights = [round(bar.get_height(), 6) for bar in ax.patches]
    assert heights == [0.9, 0.8, 0.2, 0.7]
    chance = [line for line in ax.lines if line.get_label().startswith("chance")]
    assert [list(line.get_ydata()) for line in chance] == [[0.1, 0.1]]


def test_default_lambda_is_scaled_to_a_narrow_network_and_the_papers_40_warns(one_torch_thread):
    import warnings

    import modlearn as ml

    data = ml.load_dataset("digits", verbose=False)
    train = TrainConfig(epochs=None, max_steps=200, lr=1e-3, progress=False, seed=0)
    accs = {}
    for lam in (None, 40.0):
        torch.manual_seed(0)
        model = MLP(data.input_shape, hidden=(32, 32), num_classes=10)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = cluster.train_cluster(model, data, cluster.ClusterConfig(lam=lam), train)
        accs[lam] = ml.evaluate(run.model, data.test)["acc"]
        warned = [str(w.message) for w in caught if "overpowering" in str(w.message)]
        assert bool(warned) == (lam == 40.0), (lam, warned)
    assert cluster.scaled_lam(model, cluster.model_coclusters(model, 4)) < 40.0
    assert accs[None] > 0.85 > accs[40.0], accs
