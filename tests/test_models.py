import pytest
import torch

from modlearn import models


@pytest.mark.parametrize("kind", ["mlp", "cnn", "vit"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 28, 28), (3, 32, 32)])
def test_shapes_and_blocks_compose(kind, shape):
    model = models.make_model(kind, shape, num_classes=7)
    x = torch.randn(5, *shape)
    out = model(x)
    assert out.shape == (5, 7)
    h = x
    for block in model.blocks:
        h = block(h)
    assert torch.allclose(model.head(h), out)
    assert torch.allclose(model.features(x, len(model.blocks)), h)
    assert len(model.blocks) >= 2


def test_bad_arguments_raise_value_error():
    with pytest.raises(ValueError, match="kind must be one of"):
        models.make_model("resnet", (1, 8, 8))
    with pytest.raises(ValueError, match="channels, height, width"):
        models.make_model("mlp", (64,))
    with pytest.raises(ValueError, match="hidden"):
        models.MLP(10, hidden=())
    with pytest.raises(ValueError, match="divisible"):
        models.TinyViT(dim=30, heads=4)
    with pytest.raises(ValueError, match="upto"):
        models.MLP(4, hidden=(3,)).features(torch.zeros(1, 4), 5)


def test_count_parameters():
    mlp = models.MLP(4, hidden=(3,), num_classes=2)
    assert models.count_parameters(mlp) == 4 * 3 + 3 + 3 * 2 + 2
    mlp.head.weight.requires_grad_(False)
    assert models.count_parameters(mlp, trainable_only=True) == 4 * 3 + 3 + 2
