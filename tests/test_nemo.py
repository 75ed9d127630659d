import math

import pytest
import torch
import torch.nn as nn

from modlearn import models, nemo
from modlearn.data import Split

SMALL = {
    "mlp": {"hidden": (24, 12)},
    "cnn": {"channels": (6, 10)},
    "vit": {"dim": 16, "depth": 2, "heads": 4},
}


def _masked(kind: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    model = nemo.masked_model(models.make_model(kind, (1, 8, 8), 10, **SMALL[kind]))
    model.train()
    model(torch.randn(32, 1, 8, 8))  # non-trivial BatchNorm running statistics for the CNN
    return model.eval()


@pytest.mark.parametrize("kind", ["mlp", "cnn", "vit"])
def test_pruned_module_equals_full_model_with_units_zeroed(kind):
    model = _masked(kind)
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
    model = nemo.masked_model(models.MLP(6, hidden=(5, 4), num_classes=3))
    first, second = nemo.masked_layers(model)
    keep = {
        first: torch.tensor([1, 0, 1, 0, 0], dtype=torch.bool),
        second: torch.tensor([0, 1, 1, 1], dtype=torch.bool),
    }
    module = nemo.prune_module(model, keep, [0, 2])
    by_hand = (6 * 2 + 2 * 3) / (6 * 5 + 5 * 4)
    assert nemo.weight_retention(model, module) == pytest.approx(by_hand)
    assert nemo.unit_retention(keep) == pytest.approx((2 / 5 + 3 / 4) / 2)
    assert module.head.weight.shape == (2, 3)


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


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_supervised_contrastive_loss_and_gradient_match_the_formula(seed):
    gen = torch.Generator().manual_seed(seed)
    masks = torch.rand(9, 7, generator=gen, dtype=torch.float64).requires_grad_()
    y = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 4])  # classes 2 and 4 have no positive: skipped anchors
    fast = nemo.supervised_contrastive_loss(masks, y, tau=0.3)
    (grad_fast,) = torch.autograd.grad(fast, masks)
    slow = _slow_supcon(masks, y, tau=0.3)
    (grad_slow,) = torch.autograd.grad(slow, masks)
    assert fast.item() == pytest.approx(slow.item(), rel=1e-10)
    assert torch.allclose(grad_fast, grad_slow, atol=1e-10)


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
    for method in nemo.METHODS:
        config = nemo.ModularConfig(method=method)
        loss, metrics = config.objective()(model, (x, y))
        ce = nn.functional.cross_entropy(model(x), y)
        if method == "mwt":
            terms = [
                config.alpha * a + config.beta * b
                for a, b in (nemo.cohesion_coupling_losses(layer.last_mask, y) for layer in layers)
            ]
        elif method == "nemo":
            terms = [
                config.alpha * nemo.supervised_contrastive_loss(layer.last_mask, y, config.tau)
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
    for method in nemo.METHODS:
        model, history = nemo.train_nemo(
            models.MLP((1, 8, 8), hidden=(16,), num_classes=4),
            Split(x, y),
            nemo.ModularConfig(method=method),
            ml.TrainConfig(epochs=2, batch_size=32, progress=False),
        )
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
    with pytest.raises(ValueError, match="cannot mask a Sequential"):
        nemo.masked_model(nn.Sequential(nn.Linear(2, 2)))
    with pytest.raises(ValueError, match="no masked layer"):
        nemo.collect_masks(models.MLP(4, hidden=(3,)), torch.randn(2, 4))
    with pytest.raises(ValueError, match="unknown method"):
        nemo.ModularConfig(method="splitter")


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
