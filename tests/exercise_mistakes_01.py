"""Plausible mistakes in notebook 01's exercises; each must fail its checker (tests/test_exercises.py)."""

import torch
import torch.nn.functional as F

from modlearn import checks


def _backprop_without_tanh_derivative(x, y, w1, b1, w2, b2):
    grads = checks.formula_gradients(x, y, w1, b1, w2, b2)
    a1 = torch.tanh(x @ w1.T + b1)
    d_logits = (torch.softmax(a1 @ w2.T + b2, 1) - F.one_hot(y, w2.shape[0]).double()) / x.shape[0]
    d_z1 = d_logits @ w2  # forgot * (1 - a1**2)
    return {**grads, "w1": d_z1.T @ x, "b1": d_z1.sum(0)}


def _backprop_summed_not_averaged(x, y, w1, b1, w2, b2):
    return {k: v * x.shape[0] for k, v in checks.formula_gradients(x, y, w1, b1, w2, b2).items()}


def _backprop_transposed_w2(x, y, w1, b1, w2, b2):
    grads = checks.formula_gradients(x, y, w1, b1, w2, b2)
    return {**grads, "w2": grads["w2"].T}


def _saved_tensors(model, x, y, skip_weights=True):
    """Every tensor autograd saves in one forward pass of `model`, as it is saved (repeats kept)."""
    weights = {t.untyped_storage().data_ptr() for t in (*model.parameters(), *model.buffers())}
    saved = []

    def pack(t):
        if not (skip_weights and t.untyped_storage().data_ptr() in weights):
            saved.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        F.cross_entropy(model(x), y)
    return saved


def _saved_bytes_counting_weights(model, x, y):
    saved = {(t.untyped_storage().data_ptr(), t.numel()): t for t in _saved_tensors(model, x, y, False)}
    return sum(t.numel() * t.element_size() for t in saved.values())


def _saved_bytes_counting_repeats(model, x, y):
    return sum(t.numel() * t.element_size() for t in _saved_tensors(model, x, y))


def _saved_numbers_not_bytes(model, x, y):
    saved = {(t.untyped_storage().data_ptr(), t.numel()): t for t in _saved_tensors(model, x, y)}
    return sum(t.numel() for t in saved.values())


MISTAKES = {
    "manual_gradients": [
        ("no tanh derivative", _backprop_without_tanh_derivative, "w1"),
        ("loss summed, not averaged", _backprop_summed_not_averaged, "values differ"),
        ("dW2 transposed", _backprop_transposed_w2, "transposed"),
    ],
    "saved_bytes": [
        ("weights counted as activations", _saved_bytes_counting_weights, "an MLP"),
        ("a tensor saved by two ops counted twice", _saved_bytes_counting_repeats, "expected"),
        ("numbers counted, not bytes", _saved_numbers_not_bytes, "expected"),
    ],
}
