"""Notebook 01's exercises: backprop by hand, and what backprop keeps in memory."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..local import step_activation_bytes
from ..models import CNN, MLP
from ..train import CrossEntropy
from .core import Exercise, register


def two_layer_loss(
    x: torch.Tensor, y: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor
) -> torch.Tensor:
    """The network of notebook 01: `logits = tanh(x W1^T + b1) W2^T + b2`, mean cross-entropy.

    `x: (n, d)`, `y: (n,)`, `w1: (h, d)`, `b1: (h,)`, `w2: (k, h)`, `b2: (k,)`.
    """
    return F.cross_entropy(torch.tanh(x @ w1.T + b1) @ w2.T + b2, y)


def autograd_gradients(x, y, w1, b1, w2, b2) -> dict[str, torch.Tensor]:
    """The gradients of `two_layer_loss` by autograd: `{"w1", "b1", "w2", "b2"}`, each shaped like its
    parameter."""
    params = {
        name: p.detach().clone().requires_grad_()
        for name, p in zip("w1 b1 w2 b2".split(), (w1, b1, w2, b2), strict=True)
    }
    two_layer_loss(x, y, *params.values()).backward()
    return {name: p.grad for name, p in params.items()}


def formula_gradients(x, y, w1, b1, w2, b2) -> dict[str, torch.Tensor]:
    """The gradients of `two_layer_loss` from the chain-rule formulas of notebook 01, no autograd."""
    n = x.shape[0]
    a1 = torch.tanh(x @ w1.T + b1)
    logits = a1 @ w2.T + b2
    d_logits = (torch.softmax(logits, dim=1) - F.one_hot(y, logits.shape[1]).to(logits.dtype)) / n
    d_z1 = (d_logits @ w2) * (1 - a1**2)
    return {"w1": d_z1.T @ x, "b1": d_z1.sum(0), "w2": d_logits.T @ a1, "b2": d_logits.sum(0)}


def formula_vs_autograd() -> float:
    """The largest |difference| between `formula_gradients` and `autograd_gradients` over the
    exercise's test networks (float64)."""
    worst = 0.0
    for _, args, _ in _networks():
        formula, autograd = formula_gradients(*args), autograd_gradients(*args)
        worst = max(worst, *(float((formula[k] - autograd[k]).abs().max()) for k in autograd))
    return worst


def _networks():
    gen = torch.Generator().manual_seed(0)

    def net(n: int, d: int, h: int, k: int, labels: torch.Tensor | None = None):
        x = torch.randn(n, d, generator=gen, dtype=torch.float64)
        y = torch.randint(0, k, (n,), generator=gen) if labels is None else labels
        shapes = ((h, d), (h,), (k, h), (k,))
        return (x, y, *(torch.randn(*s, generator=gen, dtype=torch.float64) for s in shapes))

    yield "a batch of 8, 5 inputs, 4 hidden units, 3 classes", net(8, 5, 4, 3), {}
    yield "one sample (n = 1)", net(1, 3, 2, 2), {}
    yield "every sample of the same class", net(6, 4, 3, 3, torch.zeros(6, dtype=torch.long)), {}
    yield "a wide hidden layer, 10 classes", net(16, 7, 12, 10), {}


register(
    Exercise(
        name="manual_gradients",
        notebook="01_e2e_backprop",
        title="Backprop by hand",
        difficulty=2,
        minutes=20,
        reference=autograd_gradients,
        solution=formula_gradients,
        cases=_networks,
        atol=1e-10,
        rtol=1e-8,
    )
)


def meter_saved_bytes(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """Peak bytes of activations autograd keeps for the backward pass of one cross-entropy step of
    `model` on `x: (n, ...)`, `y: (n,)`: `local`'s activation meter (weights and buffers not counted)."""
    return step_activation_bytes(model, CrossEntropy(), (x, y))


def hooked_saved_bytes(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """The same count written the way a learner would: one forward pass under
    `saved_tensors_hooks`, each saved tensor counted once, weights and buffers skipped."""
    weights = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    seen: set[tuple] = set()

    def pack(t: torch.Tensor) -> torch.Tensor:
        key = (t.untyped_storage().data_ptr(), t.storage_offset(), t.numel(), t.dtype)
        if key[0] not in weights:
            seen.add(key)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(model.train()(x), y)
    return sum(numel * dtype.itemsize for _, _, numel, dtype in seen)


def _models():
    gen = torch.Generator().manual_seed(1)

    def batch(n: int, shape: tuple[int, ...], k: int):
        return torch.randn(n, *shape, generator=gen), torch.randint(0, k, (n,), generator=gen)

    torch.manual_seed(1)
    mlp = MLP((1, 8, 8), hidden=(32, 32))
    yield "an MLP 64-32-32-10, a batch of 16", (mlp, *batch(16, (1, 8, 8), 10)), {}
    yield "a batch of one sample", (mlp, *batch(1, (1, 8, 8), 10)), {}
    deep = MLP(20, hidden=(50, 40, 30), num_classes=3)
    yield "a deeper MLP, 20 inputs, 3 classes", (deep, *batch(8, (20,), 3)), {}
    cnn = CNN(1, channels=(4, 8), image_size=8)
    yield "a small CNN (convolution, batch norm, pooling)", (cnn, *batch(4, (1, 8, 8), 10)), {}


register(
    Exercise(
        name="saved_bytes",
        notebook="01_e2e_backprop",
        title="What backprop keeps",
        difficulty=2,
        minutes=15,
        reference=meter_saved_bytes,
        solution=hooked_saved_bytes,
        cases=_models,
        atol=0,
        rtol=0,
    )
)
