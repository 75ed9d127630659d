"""Plausible mistakes in notebook 02's exercises; each must fail its checker (tests/test_exercises.py)."""

import torch
import torch.nn.functional as F


def _dgl(net, x, y, detach=True, every_loss=True):
    h, losses = x, []
    for stage, head in zip(net.stages, net.heads, strict=True):
        h = stage(h.detach() if detach else h)
        losses.append(F.cross_entropy(head(h), y))
    for loss in losses if every_loss else losses[-1:]:
        loss.backward(retain_graph=True)
    return {name: p.grad for name, p in net.named_parameters()}


def _dgl_without_detach(net, x, y):
    return _dgl(net, x, y, detach=False)


def _dgl_output_loss_only(net, x, y):
    return _dgl(net, x, y, every_loss=False)


def _alignment(features, labels, diagonal=False, normalise=True):
    z = F.normalize(features, dim=1) if normalise else features
    ideal = (labels[:, None] == labels[None, :]).float()
    keep = torch.ones_like(ideal).triu(diagonal=0 if diagonal else 1).bool()
    kernel, ideal = (z @ z.T)[keep], ideal[keep]
    return (kernel * ideal).sum() / (kernel.norm() * ideal.norm())


def _alignment_with_diagonal(features, labels):
    return _alignment(features, labels, diagonal=True)


def _alignment_of_raw_features(features, labels):
    return _alignment(features, labels, normalise=False)


def _ff_signs_swapped(h_pos, h_neg, theta):
    g_pos, g_neg = h_pos.pow(2).mean(1), h_neg.pow(2).mean(1)
    return (F.softplus(g_pos - theta) + F.softplus(theta - g_neg)).mean()


def _ff_goodness_summed(h_pos, h_neg, theta):
    g_pos, g_neg = h_pos.pow(2).sum(1), h_neg.pow(2).sum(1)
    return (F.softplus(theta - g_pos) + F.softplus(g_neg - theta)).mean()


def _ff_softplus_by_hand(h_pos, h_neg, theta):
    g_pos, g_neg = h_pos.pow(2).mean(1), h_neg.pow(2).mean(1)
    return (torch.log(1 + torch.exp(theta - g_pos)) + torch.log(1 + torch.exp(g_neg - theta))).mean()


MISTAKES = {
    "dgl_step": [
        ("no detach between modules", _dgl_without_detach, "values differ"),
        ("only the output loss backpropagated", _dgl_output_loss_only, "expected a tensor"),
    ],
    "kernel_alignment": [
        ("the diagonal K_ii = 1 counted", _alignment_with_diagonal, "expected"),
        ("features not normalised to unit length", _alignment_of_raw_features, "random features"),
    ],
    "ff_layer_loss": [
        ("positive and negative swapped", _ff_signs_swapped, "expected"),
        ("goodness summed over units, not averaged", _ff_goodness_summed, "expected"),
        ("softplus written as log(1 + exp(.))", _ff_softplus_by_hand, "must not overflow"),
    ],
}
