import math
from dataclasses import replace

import pytest
import torch
import torch.nn as nn

from modlearn import models, nemo
from modlearn.api import ModelContractError
from modlearn.claims import paired_verdict
from modlearn.data import Dataset, Split
from modlearn.train import evaluate

SMALL = {
    "mlp": {"hidden": (24, 12)},
    "cnn": {"channels": (6, 10)},
    "vit": {"dim": 16, "depth": 2, "heads": 4},
}


def _masked(kind: str, seed: int = 0, **options) -> nn.Module:
    torch.manual_seed(seed)
    model = nemo.masked_model(models.make_model(kind, (1, 8, 8), 10, **SMALL[kind]), **options)
    model.train()
    model(torch.randn(32, 1, 8, 8))  # non-trivial BatchNorm running statistics for the CNN
    return model.eval()


OPTIONS = [
    {},
    {"mask_first_layer": True},
    {"mask_first_layer": True, "vit_masks": "qkv_fc1"},
]


@pytest.mark.parametrize("options", OPTIONS, ids=["first-unmasked", "first-masked", "qkv-fc1"])
@pytest.mark.parametrize("kind", ["mlp", "cnn", "vit"])
def test_pruned_module_equals_full_model_with_units_zeroed(kind, options):
    model = _masked(kind, **options)
    gen = torch.Generator().manual_seed(1)
    keep = {
        name: torch.rand(layer.units, generator=gen) < 0.6
        for name, layer in nemo.masked_layers(model).items()
    }
    classes = [3, 5, 8]
    module = nemo.prune_module(model, keep, classes)
    x = torch.randn(16, 1, 8, 8)
    with torch.no_grad():
        nemo.set_unit_filter(model, keep)
        expected = model(x)[:, classes]
        nemo.set_unit_filter(model, None)
        unfiltered = model(x)[:, classes]
        got = module(x)
    assert got.shape == (16, 3)
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(got, unfiltered, atol=1e-3)  # the zeroed units did matter
    assert nemo.backbone_weights(module) < nemo.backbone_weights(model)


def test_weight_retention_of_a_hand_built_mask():
    torch.manual_seed(0)
    model = nemo.masked_model(models.MLP(6, hidden=(5, 4), num_classes=3), mask_first_layer=True)
    first, second = nemo.masked_layers(model)
    keep = {
        first: torch.tensor([1, 0, 1, 0, 0], dtype=torch.bool),
        second: torch.tensor([0, 1, 1, 1], dtype=torch.bool),
    }
    module = nemo.prune_module(model, keep, [0, 2])
    by_hand = (6 * 2 + 2 * 3) / (6 * 5 + 5 * 4)
    assert nemo.weight_retention(model, module) == pytest.approx(by_hand)
    assert nemo.unit_retention(keep) == pytest.approx((2 / 5 + 3 / 4) / 2)
    assert nemo.pooled_unit_retention(keep) == pytest.approx((2 + 3) / (5 + 4))
    assert module.head.weight.shape == (2, 3)
    # NeMo's size: every Linear's weights and biases, head included, generators excluded
    assert nemo.layer_parameters(module) == (6 * 2 + 2) + (2 * 3 + 3) + (3 * 2 + 2)
    standard = models.MLP(6, hidden=(5, 4), num_classes=3)
    assert nemo.layer_parameters(standard) == (6 * 5 + 5) + (5 * 4 + 4) + (4 * 3 + 3)


def test_threshold_zero_with_all_classes_gives_the_full_model():
    model = _masked("mlp")
    x, y = torch.randn(50, 1, 8, 8), torch.arange(50) % 10
    class_masks = nemo.class_unit_masks(nemo.collect_masks(model, x), y, 10, threshold=0.0)
    module = nemo.extract_module(model, class_masks, range(10))
    assert nemo.weight_retention(model, module) == 1.0
    with torch.no_grad():
        assert torch.allclose(module(x), model(x), atol=1e-6)


def _slow_supcon(masks: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
    n, losses = len(y), []
    z = [m / m.norm() for m in masks]
    for i in range(n):
        positives = [j for j in range(n) if j != i and y[j] == y[i]]
        if not positives:
            continue
        num = sum(torch.exp(z[i] @ z[j] / tau) for j in positives)
        den = sum(torch.exp(z[i] @ z[j] / tau) for j in range(n) if j != i)
        losses.append(-torch.log(num / den))
    return torch.stack(losses).mean()


def _loss_and_gradient_match(fast_loss, slow_loss, seed: int, tau: float) -> torch.Tensor:
    """Both losses on one random batch (float64; classes 2 and 4 have a single sample): equal values
    and gradients. Returns the masks."""
    gen = torch.Generator().manual_seed(seed)
    masks = torch.rand(9, 7, generator=gen, dtype=torch.float64).requires_grad_()
    y = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 4])
    fast, slow = fast_loss(masks, y, tau=tau), slow_loss(masks, y, tau=tau)
    (grad_fast,) = torch.autograd.grad(fast, masks)
    (grad_slow,) = torch.autograd.grad(slow, masks)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-10)
    assert torch.allclose(grad_fast, grad_slow, atol=1e-10)
    return masks


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_supervised_contrastive_loss_and_gradient_match_the_formula(seed):
    _loss_and_gradient_match(nemo.supervised_contrastive_loss, _slow_supcon, seed, tau=0.3)


def test_mwt_losses_match_pairwise_cosines():
    masks, y = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]), torch.tensor([0, 0, 1])
    cohesion, coupling = nemo.cohesion_coupling_losses(masks, y)
    assert cohesion.item() == pytest.approx(1 - 1 / math.sqrt(2))
    assert coupling.item() == pytest.approx((0.0 + 1 / math.sqrt(2)) / 2)


def test_each_method_adds_its_mask_loss_to_cross_entropy():
    torch.manual_seed(0)
    x, y = torch.randn(32, 1, 8, 8), torch.arange(32) % 4
    model = nemo.masked_model(models.MLP((1, 8, 8), hidden=(16, 12), num_classes=4))
    layers = list(nemo.masked_layers(model).values())
    for method in nemo.MODES:
        config = nemo.ModularConfig(mode=method)
        loss, metrics = config.objective()(model, (x, y))
        ce = nn.functional.cross_entropy(model(x), y)
        if method == "mwt":
            terms = [
                config.alpha * a + config.beta * b
                for a, b in (nemo.cohesion_coupling_losses(layer.last_mask, y) for layer in layers)
            ]
        elif method == "nemo":
            terms = [
                config.alpha * nemo.released_contrastive_loss(layer.last_mask, y, config.tau)
                for layer in layers
            ]
        else:
            terms = [torch.zeros(())]
        expected = sum(terms) / len(terms)
        assert method == "standard" or expected.item() > 1e-3
        assert loss.item() == pytest.approx((ce + expected).item(), rel=1e-5), method


def test_objectives_train_through_fit():
    import modlearn as ml

    x, y = torch.randn(64, 1, 8, 8), torch.arange(64) % 4
    logged = {"standard": set(), "mwt": {"cohesion_loss", "coupling_loss"}, "nemo": {"contrastive_loss"}}
    for method in nemo.MODES:
        run = nemo.train_nemo(
            models.MLP((1, 8, 8), hidden=(16, 12), num_classes=4),
            Split(x, y),
            nemo.ModularConfig(mode=method),
            ml.TrainConfig(epochs=2, batch_size=32, progress=False),
        )
        model, history = run.model, run.history
        assert run.extras.config.mode == method and run.method == "nemo"
        assert history.num_steps == 4 and nemo.masked_layers(model)
        assert logged[method] <= set(history.steps), (method, sorted(history.steps))


def test_bad_input_raises_value_error():
    model = _masked("mlp")
    x, y = torch.randn(20, 1, 8, 8), torch.arange(20) % 10
    class_masks = nemo.class_unit_masks(nemo.collect_masks(model, x), y, 10)
    with pytest.raises(ValueError, match="empty"):
        nemo.extract_module(model, class_masks, [])
    with pytest.raises(ValueError, match="unknown class"):
        nemo.extract_module(model, class_masks, [3, 10])
    for threshold in (-0.1, 1.5):
        with pytest.raises(ValueError, match="threshold"):
            nemo.class_unit_masks(nemo.collect_masks(model, x), y, 10, threshold=threshold)
        with pytest.raises(ValueError, match="threshold"):
            nemo.ModularConfig(threshold=threshold)
    with pytest.raises(ValueError, match="cannot mask a Conv1d"):
        nemo.mask_layer(nn.Conv1d(2, 3, 3))
    with pytest.raises(ModelContractError, match=r"masked_model\(model=Sequential\)"):
        nemo.masked_model(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="no masked layer"):
        nemo.collect_masks(models.MLP(4, hidden=(3,)), torch.randn(2, 4))
    with pytest.raises(ValueError, match="unknown mode"):
        nemo.ModularConfig(mode="splitter")
    with pytest.raises(ValueError, match="loss"):
        nemo.ModularConfig(loss="infonce")
    with pytest.raises(ValueError, match="vit_masks"):
        nemo.ModularConfig(vit_masks="q")
    with pytest.raises(ValueError, match="mask_first_layer=True"):
        nemo.masked_model(models.MLP(4, hidden=(3,)))


def test_module_picker_renders_headless():
    from modlearn import widgets

    model = _masked("mlp")
    x, y = torch.randn(40, 1, 8, 8), torch.arange(40) % 10
    analysis = nemo.ModularAnalysis.of(model, Split(x, y))
    picker = widgets.module_picker(analysis, Split(x, y), initial=(0, 1))
    assert picker.children[0].value == (0, 1)


def _perfect_classifier(rows: list[int]) -> nn.Linear:
    """A Linear whose output j is input feature `rows[j]`: perfect on one-hot inputs of those classes."""
    layer = nn.Linear(10, len(rows))
    with torch.no_grad():
        layer.weight.copy_(torch.eye(10)[rows])
        layer.bias.zero_()
    return layer


def test_subtask_accuracy_of_a_full_model_and_of_a_module():
    y = torch.tensor([3, 5, 5, 3, 0, 9, 5])
    split = Split(nn.functional.one_hot(y, 10).float(), y)
    full = _perfect_classifier(list(range(10)))
    assert nemo.subtask_accuracy(full, split, [5, 3]) == 1.0
    assert nemo.subtask_accuracy(full, split, [5, 3], restrict=True) == 1.0
    module = _perfect_classifier([3, 5])  # outputs the classes in increasing order, as extract_module
    assert nemo.subtask_accuracy(module, split, [3, 5]) == 1.0
    wrong = _perfect_classifier([5, 3])
    assert nemo.subtask_accuracy(wrong, split, [3, 5]) == 0.0


def _slow_released(masks: torch.Tensor, y: torch.Tensor, tau: float) -> torch.Tensor:
    """NeMo's released `loss_func_contra`, entry by entry: the 0/1 indicator multiplies the
    similarity before the exponential, over every j (the anchor included)."""
    n, losses = len(y), []
    z = [m / m.norm() for m in masks]
    for i in range(n):
        pos = sum(torch.exp((z[i] @ z[j]) * float(y[i] == y[j]) / tau) for j in range(n))
        neg = sum(torch.exp((z[i] @ z[j]) * float(y[i] != y[j]) / tau) for j in range(n))
        losses.append(-torch.log((pos + 1e-8) / (pos + neg + 1e-8)))
    return torch.stack(losses).mean()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_released_contrastive_loss_and_gradient_match_the_released_code(seed):
    masks = _loss_and_gradient_match(nemo.released_contrastive_loss, _slow_released, seed, tau=0.2)
    y = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 4])
    released = nemo.released_contrastive_loss(masks, y, 0.2).item()
    assert released != pytest.approx(nemo.supervised_contrastive_loss(masks, y, 0.2).item(), rel=1e-3)


def _toy_task(seed: int = 0, n: int = 240) -> Dataset:
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = torch.randn(n, 1, 8, 8, generator=gen) + 1.5 * nn.functional.one_hot(y, 64).float().view(n, 1, 8, 8)
    split = [Split(x[k::3], y[k::3]) for k in range(3)]
    return Dataset("toy", split[0], split[1], split[2], 4, "four noisy one-hot classes")


def test_reference_finetune_chooses_its_epoch_on_validation_never_on_test():
    data = _toy_task()
    model = _masked("mlp")
    keep = {
        name: torch.ones(layer.units, dtype=torch.bool) for name, layer in nemo.masked_layers(model).items()
    }
    config = nemo.FinetuneConfig(epochs=6, lr=0.05, batch_size=16)
    clean = nemo.finetune_reference(nemo.reference_module(model, keep, (1, 2)), data, (1, 2), config)
    poisoned_test = Split(
        data.test.x, torch.randint(0, 4, data.test.y.shape, generator=torch.Generator().manual_seed(9))
    )
    poisoned = replace(data, test=poisoned_test)
    again = nemo.finetune_reference(nemo.reference_module(model, keep, (1, 2)), poisoned, (1, 2), config)
    assert len(clean.val_acc) == 6 and 1 <= clean.best_epoch <= 6
    assert again.val_acc == clean.val_acc and again.best_epoch == clean.best_epoch
    assert not nemo.masked_layers(again.module)  # generators removed, kept units fully on
    assert again.module(data.val.x[:5]).shape == (5, 2)
    # the kept epoch is the best on validation: the module is left there
    val = nemo.subtask_split(data.val, (1, 2))
    assert evaluate(again.module, val)["acc"] == pytest.approx(max(again.val_acc))


def test_retention_at_accuracy_on_hand_built_points():
    points = [(0.9, 0.97), (0.2, 0.80), (0.4, 0.95), (0.3, 0.94), (0.6, 0.96)]
    assert nemo.retention_at_accuracy(points, 0.94) == 0.3
    assert nemo.retention_at_accuracy(points, 0.95) == 0.4
    assert nemo.retention_at_accuracy(points, 0.5) == 0.2
    assert math.isnan(nemo.retention_at_accuracy(points, 0.99))
    rows = [{"weight_retention": r, "val_acc": a, "test_acc": a - 0.01} for r, a in points]
    assert nemo.module_at_matched_accuracy(rows, 0.975, 0.02)["weight_retention"] == 0.6
    assert nemo.module_at_matched_accuracy(rows, 2.0, 0.02) is None


def test_class_order_groups_units_by_their_first_class():
    masks = torch.tensor([[0, 1, 0, 0, 1], [1, 0, 0, 1, 1]], dtype=torch.bool)
    assert nemo.class_order(masks).tolist() == [1, 4, 0, 3, 2]


def test_paired_verdict_needs_every_seed_and_a_clear_margin():
    assert paired_verdict([0.30, 0.32, 0.31], [0.50, 0.49, 0.52]) == "smaller"
    assert paired_verdict([0.50, 0.49, 0.52], [0.30, 0.32, 0.31]) == "larger"
    assert paired_verdict([0.30, 0.52, 0.31], [0.50, 0.49, 0.52]) == "not distinguishable"  # one seed flips
    assert paired_verdict([0.40, 0.30, 0.48], [0.41, 0.49, 0.49]) == "not distinguishable"  # within 2 sd
    assert paired_verdict([0.3, math.nan], [0.5, 0.5]) == "not distinguishable"


def test_frontiers_match_each_seed_against_its_own_standard_model():
    def point(size, val):
        return {"weight_retention": size, "val_acc": val}

    frontiers = nemo.Frontiers(
        {"a": [[point(0.2, 0.90), point(0.5, 0.99)], [point(0.3, 0.97), point(0.6, 0.99)]]},
        seeds=[0, 1],
        standard_val_acc=[1.0, 0.98],
        standard_test_acc=[1.0, 0.98],
    )
    assert frontiers.sizes(tolerance=0.02) == {"a": [0.5, 0.3]}
    no_slack = frontiers.sizes(tolerance=0.0)["a"]  # seed 0 needs 1.0, which no point reaches
    assert math.isnan(no_slack[0]) and no_slack[1] == 0.6
    assert frontiers.verdict("a", "a", tolerance=0.02) == "not distinguishable"


def test_default_masks_follow_the_reference_codes():
    mlp = nemo.masked_model(models.MLP((1, 8, 8), hidden=(16, 12, 8)))
    assert list(nemo.masked_layers(mlp)) == ["blocks.1.0", "blocks.2.0"]  # first layer unmasked
    vit = nemo.masked_model(models.TinyViT(8, dim=16, depth=3, heads=4))
    names = {"attn.q", "attn.k", "attn.v", "attn.proj", "mlp.fc1", "mlp.fc2"}
    assert set(nemo.masked_layers(vit)) == {f"blocks.{b}.{n}" for b in (2, 3) for n in names}
    narrow = nemo.masked_model(models.TinyViT(8, dim=16, depth=2, heads=4), True, "qkv_fc1")
    assert len(nemo.masked_layers(narrow)) == 8


def test_finetune_config_rejects_bad_values():
    for field, value in (("epochs", 0), ("lr", 0.0), ("optimizer", "rmsprop"), ("momentum", 1.0)):
        with pytest.raises(ValueError, match=field):
            nemo.FinetuneConfig(**{field: value})


def test_threshold_sweep_keeps_fewer_units_at_higher_thresholds():
    data = _toy_task()
    model = _masked("mlp")
    points = nemo.threshold_sweep(model, data, (1, 2), [0.0, 0.5, 0.9, 1.0])
    sizes = [point["pooled_unit_retention"] for point in points]
    assert sizes[0] == 1.0 and sizes == sorted(sizes, reverse=True) and sizes[-1] < 1.0
    assert [point["threshold"] for point in points] == [0.0, 0.5, 0.9, 1.0]
    assert all(0 <= point["cut_test_acc"] <= 1 and "val_acc" not in point for point in points)


def test_a_plain_sequential_is_masked_after_its_first_layer():
    torch.manual_seed(0)
    seq = nn.Sequential(
        nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 3)
    )
    model = nemo.masked_model(seq)
    assert list(nemo.masked_layers(model)) == ["blocks.1.0"]
    assert isinstance(seq[3], nn.Linear), "the given Sequential changed"
    x = torch.randn(5, 16)
    nemo.set_unit_filter(model, {"blocks.1.0": torch.tensor([True] * 3 + [False] * 3)})
    model(x)
    assert (nemo.masked_layers(model)["blocks.1.0"].last_mask[:, 3:] == 0).all()
