"""Activation memory of one training step, counted exactly: the bytes of tensors autograd saves for
the backward pass that are alive at once (`torch.autograd.graph.saved_tensors_hooks`)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn

from ..api import block_model
from ..train import Batch, CrossEntropy, Objective
from .config import LocalConfig
from .dgl import DecoupledObjective
from .ff import ForwardForwardNet, ForwardForwardObjective
from .kernel import KernelAlignmentObjective, kernel_modules
from .net import LocalNet


class SavedTensorMeter:
    """Counts the bytes of tensors saved for backward that are alive at once (`peak`, `current`).

    Use as a context manager around a training step. A tensor is counted once however many ops
    save it, from when autograd packs it until the graph that holds it is freed; parameters and
    buffers listed in `exclude` are weights, not activations, and are not counted.
    """

    def __init__(self, exclude: Sequence[torch.Tensor] = ()) -> None:
        self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.alive: dict[tuple, list[int]] = {}
        self.current = self.peak = 0

    def __enter__(self) -> SavedTensorMeter:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, _unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._hooks.__exit__(*exc)

    def _pack(self, t: torch.Tensor) -> _Saved:
        storage = t.untyped_storage().data_ptr()
        if storage in self.exclude:
            return _Saved(t, None)
        key = (storage, t.storage_offset(), t.numel(), t.dtype)
        entry = self.alive.setdefault(key, [0, t.numel() * t.element_size()])
        if entry[0] == 0:
            self.current += entry[1]
            self.peak = max(self.peak, self.current)
        entry[0] += 1
        return _Saved(t, (self, key))

    def release(self, key: tuple) -> None:
        """One saved copy of the tensor `key` was freed; stop counting it when none is left."""
        entry = self.alive[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.current -= entry[1]
            del self.alive[key]


class _Saved:
    """A packed tensor; when autograd frees it, the meter stops counting it."""

    def __init__(self, tensor: torch.Tensor, owner: tuple[SavedTensorMeter, tuple] | None) -> None:
        self.tensor, self.owner = tensor, owner

    def __del__(self) -> None:
        if self.owner is not None:
            meter, key = self.owner
            meter.release(key)


def _unpack(saved: _Saved) -> torch.Tensor:
    return saved.tensor


def step_activation_bytes(module: nn.Module, objective: Objective, batch: Batch) -> int:
    """Peak bytes of saved activations during one training step (forward + backward) of `objective`
    on `batch = (x: (n, ...), y: (n,))`.

    Runs on a copy of `module`, so the original's weights, gradients and statistics are untouched.
    """
    module = copy.deepcopy(module).train()
    weights = [*module.parameters(), *module.buffers()]
    with SavedTensorMeter(exclude=weights) as meter:
        loss, _ = objective(module, batch)
        if not objective.handles_backward:
            loss.backward()
        del loss
    return meter.peak


def activation_bytes(model: nn.Module, batch: Batch, config: LocalConfig, num_classes: int = 10) -> int:
    """Activation memory of one training step of `config.mode` on `model` (a `BlockModel` or a plain
    `nn.Sequential`) for `batch = (x: (n, ...), y: (n,))`; `model` is left as it was.

    E2E holds every block's activations until its backward pass; DGL frees each module's before
    the next runs; greedy (and the kernel method) count their most expensive module, whose input
    is a cached tensor; Forward-Forward counts one positive and one negative pass, layer by layer.
    """
    x, y = batch
    model = block_model(copy.deepcopy(model), "activation_bytes")
    if config.mode == "kernel":
        hidden, output = kernel_modules(model, x.shape[1:], num_classes)
        with torch.no_grad():
            features = hidden.eval()(x)
        return max(
            step_activation_bytes(hidden, KernelAlignmentObjective(config.kernel_min), batch),
            step_activation_bytes(output, CrossEntropy(), (features, y)),
        )
    if config.mode == "e2e":
        return step_activation_bytes(model, CrossEntropy(), batch)
    if config.mode == "ff":
        return step_activation_bytes(
            ForwardForwardNet(model, num_classes, "activation_bytes"),
            ForwardForwardObjective(config.ff_theta),
            batch,
        )
    net = LocalNet(model, x.shape[1:], num_classes, config.num_modules, config.aux_head, config.aux_hidden)
    if config.mode == "dgl":
        return step_activation_bytes(net, DecoupledObjective(), batch)
    peaks = []
    for k, (stage, head) in enumerate(zip(net.stages, net.heads, strict=True)):
        with torch.no_grad():
            inputs = net.prefix(k).eval()(x)
        peaks.append(step_activation_bytes(nn.Sequential(stage, head), CrossEntropy(), (inputs, y)))
    return max(peaks)
