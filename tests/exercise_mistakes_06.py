"""Plausible mistakes in notebook 06's exercises; each must fail its checker (tests/test_exercises.py)."""

import torch


def _cost_without_layer_gap(model, weight_factor=1.0):
    return sum(
        (lin.weight.abs() * weight_factor * model.distance(l)).sum() + lin.bias.abs().sum() * model.spacing
        for l, lin in enumerate(model.linears)
    )


def _cost_with_signed_weights(model, weight_factor=1.0):
    return sum(
        (lin.weight * (weight_factor * model.distance(l) + model.spacing)).sum()
        + lin.bias.abs().sum() * model.spacing
        for l, lin in enumerate(model.linears)
    )


def _cost_without_biases(model, weight_factor=1.0):
    return sum(
        (lin.weight.abs() * (weight_factor * model.distance(l) + model.spacing)).sum()
        for l, lin in enumerate(model.linears)
    )


def _placement(model, layer, weight_factor, outgoing=True):
    m = 0.0
    if layer > 0:
        m = m + model.linears[layer - 1].weight.abs() @ model.distance(layer - 1).T
    if outgoing and layer < len(model.linears):
        m = m + model.linears[layer].weight.abs().T @ model.distance(layer)
    return weight_factor * m


def _gains_with_the_wrong_sign(model, layer, weight_factor=1.0):
    m = _placement(model, layer, weight_factor)
    return m.diagonal()[:, None] + m.diagonal()[None, :] - m - m.T


def _gains_without_outgoing_wires(model, layer, weight_factor=1.0):
    m = _placement(model, layer, weight_factor, outgoing=False)
    if not torch.is_tensor(m):
        m = torch.zeros(model.widths[layer], model.widths[layer], dtype=torch.float64)
    return m + m.T - m.diagonal()[:, None] - m.diagonal()[None, :]


def _gains_only_moving_i(model, layer, weight_factor=1.0):
    m = _placement(model, layer, weight_factor)
    return m - m.diagonal()[:, None]


def _lambda_strict_boundaries(step, total_steps, lam, factors=(1.0, 10.0, 1.0), boundaries=(0.25, 0.75)):
    return lam * factors[sum(step / total_steps > b for b in boundaries)]


def _lambda_steps_not_fractions(step, total_steps, lam, factors=(1.0, 10.0, 1.0), boundaries=(0.25, 0.75)):
    return lam * factors[sum(step >= b for b in boundaries)]


MISTAKES = {
    "connection_cost": [
        ("no layer gap l0 in the wire length", _cost_without_layer_gap, "expected"),
        ("W instead of |W|", _cost_with_signed_weights, "expected"),
        ("biases not penalized", _cost_without_biases, "expected"),
    ],
    "swap_gains": [
        ("gain with the wrong sign", _gains_with_the_wrong_sign, "values differ"),
        ("outgoing wires forgotten", _gains_without_outgoing_wires, "values differ"),
        ("only neuron i moves, j stays", _gains_only_moving_i, "values differ"),
    ],
    "lambda_at": [
        ("> instead of >= at a boundary", _lambda_strict_boundaries, "step 250"),
        ("boundaries compared with the step, not the fraction", _lambda_steps_not_fractions, "step"),
    ],
}
