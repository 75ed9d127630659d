"""Plausible mistakes in notebook 05's exercises; each must fail its checker (tests/test_exercises.py)."""

import torch
import torch.nn.functional as F

from modlearn import nemo


def _cosines(masks):
    z = F.normalize(masks.float(), dim=1, eps=1e-8)
    return z @ z.T


def _mwt_with_the_diagonal(masks, y):
    cos = _cosines(masks)
    same, different = y[:, None] == y[None, :], y[:, None] != y[None, :]
    return 1 - cos[same].mean(), cos[different].mean() if different.any() else cos.new_zeros(())


def _mwt_with_dot_products(masks, y):
    dots = masks.float() @ masks.float().T
    upper = torch.ones_like(dots, dtype=torch.bool).triu(1)
    same, different = (y[:, None] == y[None, :]) & upper, (y[:, None] != y[None, :]) & upper
    zero = dots.new_zeros(())
    return (
        1 - dots[same].mean() if same.any() else zero,
        dots[different].mean() if different.any() else zero,
    )


def _mwt_coupling_over_all_pairs(masks, y):
    cohesion, _ = nemo.cohesion_coupling_losses(masks, y)
    cos = _cosines(masks)
    return cohesion, cos[torch.ones_like(cos, dtype=torch.bool).triu(1)].mean()


def _nemo_supcon(masks, y, tau=0.3):
    return nemo.supervised_contrastive_loss(masks, y, tau)


def _nemo_positives_over_negatives(masks, y, tau=0.3):
    sim, same = _cosines(masks), (y[:, None] == y[None, :]).float()
    pos, neg = torch.exp(sim * same / tau).sum(1), torch.exp(sim * (1 - same) / tau).sum(1)
    return -torch.log(pos / neg).mean()


def _nemo_without_tau(masks, y, tau=0.3):
    return nemo.released_contrastive_loss(masks, y, 1.0)


def _units_strictly_above(masks, y, num_classes, threshold):
    return torch.stack([masks[y == c].float().mean(0) > threshold for c in range(num_classes)])


def _units_over_all_samples(masks, y, num_classes, threshold):
    rate = masks.float().mean(0)
    return torch.stack([rate >= threshold for _ in range(num_classes)])


def _units_counted_not_averaged(masks, y, num_classes, threshold):
    return torch.stack([masks[y == c].float().sum(0) >= threshold for c in range(num_classes)])


MISTAKES = {
    "mwt_losses": [
        ("pairs i = j counted as same-class pairs", _mwt_with_the_diagonal, "values differ"),
        ("dot products instead of cosines", _mwt_with_dot_products, "expected"),
        ("coupling averaged over every pair", _mwt_coupling_over_all_pairs, "item 1"),
    ],
    "nemo_loss": [
        ("the supcon variant (positives j != i, -inf masking)", _nemo_supcon, "expected"),
        ("positives over negatives, not over all", _nemo_positives_over_negatives, "expected"),
        ("tau forgotten", _nemo_without_tau, "expected"),
    ],
    "class_units": [
        ("strictly above the threshold", _units_strictly_above, "values differ"),
        ("the rate over all samples, not the class's", _units_over_all_samples, "values differ"),
        ("counts instead of fractions", _units_counted_not_averaged, "values differ"),
    ],
}
