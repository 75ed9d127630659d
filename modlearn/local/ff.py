"""Forward-Forward (Hinton 2022): each layer of an MLP trained on its own goodness contrast between
positive data (the true label written into the input) and negative data (a wrong label)."""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..api import block_model, contract_error
from ..train import Batch, CrossEntropy, Metrics, Objective


class ForwardForwardNet(nn.Module):
    """An MLP trained with Forward-Forward (Hinton 2022). `forward(x: (batch, ...)) -> (batch, classes)`
    goodness scores.

    `model`: a `BlockModel` or a plain `nn.Sequential` whose blocks hold Linear layers only (an MLP);
    its blocks are the `layers` (shared, not copied), its head is not used. The label is written into
    the first `num_classes` inputs; each layer sees the *direction* of the previous layer's output
    (unit norm) and its goodness is `mean(h^2)`. A sample is classified by the label whose overlay gives
    the largest goodness summed over layers (one pass per label). Raises `ModelContractError` (naming
    `owner`) for a model with convolutions or with fewer inputs than classes.
    """

    def __init__(self, model: nn.Module, num_classes: int, owner: str = "ForwardForwardNet") -> None:
        super().__init__()
        blocks = block_model(model, owner).blocks
        fix = "pass ml.make_model('mlp', data.input_shape) or an nn.Sequential(nn.Flatten(), nn.Linear, ...)"
        layers = [m for m in blocks.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))]
        if not layers or any(not isinstance(m, nn.Linear) for m in layers):
            raise contract_error(owner, model, "an MLP (blocks of Linear layers) for Forward-Forward", fix)
        if layers[0].in_features < num_classes:
            raise contract_error(
                owner,
                model,
                f"at least {num_classes} inputs to hold a one-hot label of {num_classes} classes, "
                f"found {layers[0].in_features}",
                fix,
            )
        self.layers, self.num_classes = blocks, num_classes

    def overlay(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """`x: (batch, ...)` flattened, with `onehot(labels) * max(x)` in its first `num_classes` inputs."""
        flat = x.flatten(1).clone()
        flat[:, : self.num_classes] = 0.0
        flat[torch.arange(len(flat), device=flat.device), labels] = flat.amax(dim=1)
        return flat

    @staticmethod
    def layer_step(layer: nn.Module, h: torch.Tensor) -> torch.Tensor:
        """One layer on the direction of its input: `layer(h / |h|)`, `h: (batch, d)`."""
        return layer(h / (h.norm(dim=1, keepdim=True) + 1e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = []
        for c in range(self.num_classes):
            h = self.overlay(x, torch.full((len(x),), c, device=x.device, dtype=torch.long))
            total = torch.zeros(len(x), device=x.device)
            for layer in self.layers:
                h = self.layer_step(layer, h)
                total = total + goodness(h)
            scores.append(total)
        return torch.stack(scores, dim=1)


def goodness(h: torch.Tensor) -> torch.Tensor:
    """Forward-Forward goodness of a layer's activity `h: (batch, d)` -> `(batch,)`: `mean(h^2)`."""
    return h.float().pow(2).mean(dim=1)


def ff_layer_loss(h_pos: torch.Tensor, h_neg: torch.Tensor, theta: float = 2.0) -> torch.Tensor:
    """One layer's Forward-Forward loss, a scalar: `mean(softplus(θ - g(h_pos)) + softplus(g(h_neg) - θ))`.

    `h_pos, h_neg: (batch, d)`, the layer's activity on positive and negative data; `g` is `goodness`.
    """
    return (F.softplus(theta - goodness(h_pos)) + F.softplus(goodness(h_neg) - theta)).mean()


class ForwardForwardObjective(Objective):
    """Per layer: `softplus(θ - g(pos)) + softplus(g(neg) - θ)`, backpropagated inside the layer only.

    Positive data carry the true label, negative data a random wrong one. The metric `separated`
    is the fraction of samples whose positive goodness (summed over layers) beats the negative one;
    validation reports the real accuracy of the goodness classifier (one pass per label).
    """

    handles_backward = True

    def __init__(self, theta: float = 2.0) -> None:
        self.theta = theta

    def __call__(self, model: ForwardForwardNet, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        """`batch = (x: (batch, ...), y: (batch,))`; backpropagates each layer's loss, returns their sum."""
        x, y = batch
        wrong = (y + torch.randint_like(y, 1, model.num_classes)) % model.num_classes
        h_pos, h_neg = model.overlay(x, y), model.overlay(x, wrong)
        total, separation = torch.zeros((), device=x.device), torch.zeros(len(x), device=x.device)
        for layer in model.layers:
            h_pos = model.layer_step(layer, h_pos.detach())
            h_neg = model.layer_step(layer, h_neg.detach())
            loss = ff_layer_loss(h_pos, h_neg, self.theta)
            loss.backward()
            total = total + loss.detach()
            separation = separation + (goodness(h_pos) - goodness(h_neg)).detach()
        return total, {"separated": (separation > 0).float().mean()}

    @property
    def task(self) -> Objective:
        return CrossEntropy()
