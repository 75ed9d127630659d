"""Decoupled greedy learning (DGL; Belilovsky, Eickenberg & Oyallon, ICML 2020): every module trains
every step on its detached input, with its own head and loss."""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F

from ..train import Batch, CrossEntropy, Metrics, Objective
from .net import LocalNet


class DecoupledObjective(Objective):
    """DGL: every step, stage k trains on its *detached* input with its own head and loss.

    Each stage's loss is backpropagated before the next stage runs, so only one stage's
    activations are alive at a time and no gradient crosses a stage boundary. One Adam/SGD over
    the disjoint parameter sets equals K independent optimizers (their updates are per parameter).
    The reported `loss` and `acc` are the last stage's (the network's output, the quantity that
    validation measures); `loss_k` is stage k's loss and `loss_sum` their sum.
    """

    handles_backward = True

    def __call__(self, model: LocalNet, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        """`batch = (x: (batch, ...), y: (batch,))`; backpropagates each stage's loss, returns the last."""
        x, y = batch
        h, total, metrics = x, torch.zeros((), device=x.device), {}
        for k, (stage, head) in enumerate(zip(model.stages, model.heads, strict=True)):
            h = stage(h.detach())
            logits = head(h)
            loss = F.cross_entropy(logits.float(), y)
            loss.backward()
            total = total + loss.detach()
            metrics[f"loss_{k}"] = loss.detach()
        metrics["loss_sum"] = total
        metrics["acc"] = (logits.argmax(dim=1) == y).float().mean()
        return loss.detach(), metrics

    @property
    def task(self) -> Objective:
        return CrossEntropy()


def decoupled_gradients(net: LocalNet, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """The gradients one DGL step (`DecoupledObjective`) gives every parameter of `net`, by name
    (`net.named_parameters()`), from zero. Runs on a copy: `net` is untouched.

    `x: (batch, ...)`, `y: (batch,)`; each gradient is shaped like its parameter.
    """
    net = copy.deepcopy(net).train()
    net.zero_grad(set_to_none=True)
    DecoupledObjective()(net, (x, y))
    return {name: p.grad for name, p in net.named_parameters()}
