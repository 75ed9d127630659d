"""Plausible mistakes in notebook 07's exercises; each must fail its checker (tests/test_exercises.py)."""

import torch
import torch.nn.functional as F


def _patch_the_kept_edges(h, w, b, mask, r):
    return F.linear(h, w, b) - (h - r) @ (mask * w).T


def _patch_with_the_wrong_sign(h, w, b, mask, r):
    return F.linear(h, w, b) + (h - r) @ ((1 - mask) * w).T


def _drop_the_removed_edges(h, w, b, mask, r):
    return F.linear(h, mask * w, b)


def _acdc(problem, tau, order=reversed, against_full=False, absolute=False):
    masks = problem.all_edges()
    masks[-1][~problem.targets] = 0.0
    full = current = float(problem.metric(problem.run(masks).out))
    for layer in order(range(len(masks))):
        for receiver in range(masks[layer].shape[0]):
            for sender in range(masks[layer].shape[1]):
                if masks[layer][receiver, sender] == 0:
                    continue
                masks[layer][receiver, sender] = 0.0
                value = float(problem.metric(problem.run(masks).out))
                rise = value if absolute else value - (full if against_full else current)
                if rise <= tau:
                    current = value
                else:
                    masks[layer][receiver, sender] = 1.0
    return [m > 0 for m in masks]


def _acdc_from_the_inputs_up(problem, tau):
    return _acdc(problem, tau, order=iter)


def _acdc_against_the_full_model(problem, tau):
    return _acdc(problem, tau, against_full=True)


def _acdc_threshold_on_the_metric(problem, tau):
    return _acdc(problem, tau, absolute=True)


def _attribution(problem, square_weight=True, square_effect=True, mean_first=False):
    net, h, refs = problem.net, problem.full.h, problem.refs
    zs = [F.linear(h[0], net.weights[0], net.biases[0]).requires_grad_(True)]
    for w, b in zip(net.weights[1:], net.biases[1:], strict=True):
        zs.append(F.linear(net.activation(zs[-1]), w, b))
    readout = zs[-1][:, problem.targets]
    scores = [torch.zeros_like(w) for w in net.weights]
    for k in range(readout.shape[1]):
        grads = torch.autograd.grad(readout[:, k].sum(), zs, retain_graph=True)
        for score, w, g, a, r in zip(scores, net.weights, grads, h[:-1], refs, strict=True):
            d = a - r
            if mean_first:
                score += (w * (g.T @ d) / len(d)) ** 2
            elif not square_effect:
                score += w * (g.T @ d) / len(d)
            else:
                score += (w**2 if square_weight else w.abs()) * (g.pow(2).T @ d.pow(2)) / len(d)
    return scores


def _attribution_signed(problem):
    return _attribution(problem, square_effect=False)


def _attribution_abs_weight(problem):
    return _attribution(problem, square_weight=False)


def _attribution_mean_then_square(problem):
    return _attribution(problem, mean_first=True)


MISTAKES = {
    "patched_linear": [
        ("the kept edges patched, not the removed ones", _patch_the_kept_edges, "values differ"),
        ("the patch added instead of subtracted", _patch_with_the_wrong_sign, "values differ"),
        ("removed edges dropped (zero ablation whatever r is)", _drop_the_removed_edges, "values differ"),
    ],
    "acdc_loop": [
        ("layers visited from the inputs up", _acdc_from_the_inputs_up, "values differ"),
        ("the rise measured against the full model", _acdc_against_the_full_model, "values differ"),
        ("tau compared with the metric, not its rise", _acdc_threshold_on_the_metric, "values differ"),
    ],
    "attribution_scores": [
        ("signed effect, not squared", _attribution_signed, "values differ"),
        ("|W| instead of W squared", _attribution_abs_weight, "values differ"),
        ("batch mean taken before squaring", _attribution_mean_then_square, "values differ"),
    ],
}
