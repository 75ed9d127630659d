"""Checkers for the notebooks' exercises (ARENA style): pass your function, get a verdict.

Each checker compares your implementation with a reference on random inputs, raises an
`AssertionError` naming the failing case, and prints one line when everything matches.
A function that still raises `NotImplementedError` is reported, not crashed on.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def two_layer_loss(
    x: torch.Tensor, y: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, b2: torch.Tensor
) -> torch.Tensor:
    """The network of notebook 01: `logits = tanh(x W1^T + b1) W2^T + b2`, mean cross-entropy.

    `x: (n, d)`, `y: (n,)`, `w1: (h, d)`, `b1: (h,)`, `w2: (k, h)`, `b2: (k,)`.
    """
    return F.cross_entropy(torch.tanh(x @ w1.T + b1) @ w2.T + b2, y)


def check_backprop(
    manual_gradients: Callable[..., dict[str, torch.Tensor]], trials: int = 5, atol: float = 1e-10
) -> float | None:
    """Compare `manual_gradients(x, y, w1, b1, w2, b2) -> {"w1": ..., "b1": ..., "w2": ..., "b2": ...}`
    with autograd on `two_layer_loss`, in float64. Returns the largest absolute difference.
    """
    gen = torch.Generator().manual_seed(0)
    worst = 0.0
    for trial in range(trials):
        n, d, h, k = (int(v) for v in torch.randint(2, 9, (4,), generator=gen))
        x = torch.randn(n, d, generator=gen, dtype=torch.float64)
        y = torch.randint(0, k, (n,), generator=gen)
        params = {
            name: torch.randn(*shape, generator=gen, dtype=torch.float64, requires_grad=True)
            for name, shape in (("w1", (h, d)), ("b1", (h,)), ("w2", (k, h)), ("b2", (k,)))
        }
        two_layer_loss(x, y, *params.values()).backward()
        try:
            mine = manual_gradients(x, y, *(p.detach() for p in params.values()))
        except NotImplementedError:
            print("check_backprop: not implemented yet - fill in the function and run again.")
            return None
        for name, p in params.items():
            if name not in mine:
                raise AssertionError(f"trial {trial}: your result has no gradient for {name!r}")
            if mine[name].shape != p.grad.shape:
                raise AssertionError(
                    f"trial {trial}: d{name} has shape {tuple(mine[name].shape)}, "
                    f"expected {tuple(p.grad.shape)}"
                )
            err = float((mine[name] - p.grad).abs().max())
            worst = max(worst, err)
            if err > atol:
                raise AssertionError(
                    f"trial {trial} (n={n}, d={d}, h={h}, k={k}): d{name} differs from autograd by {err:.2e}"
                )
    print(f"check_backprop: all {trials} random networks match autograd (max |difference| {worst:.1e}).")
    return worst
