"""Plausible mistakes in notebook 04's exercises; each must fail its checker (tests/test_exercises.py)."""

import numpy as np
import torch
from sklearn.cluster import KMeans


def _in_blocks(rows, cols):
    return rows[:, None] == cols[None, :]


def _c_unsquared(weight, rows, cols):
    a = weight.abs()
    return (a * _in_blocks(rows, cols)).sum() / a.sum()


def _c_signed(weight, rows, cols):
    return (weight * _in_blocks(rows, cols)).sum() / weight.sum()


def _c_not_normalised(weight, rows, cols):
    return (weight.pow(2) * _in_blocks(rows, cols)).sum()


def _embedding(weight, k, signed=False, first=1, normalise=True):
    a = (weight if signed else weight.abs()).double().numpy() + 1e-12
    d_out, d_in = 1 / np.sqrt(np.abs(a.sum(1))), 1 / np.sqrt(np.abs(a.sum(0)))
    if not normalise:
        d_out, d_in = np.ones_like(d_out), np.ones_like(d_in)
    u, _, vt = np.linalg.svd(d_out[:, None] * a * d_in[None, :], full_matrices=False)
    return d_out[:, None] * u[:, first : first + k - 1], d_in[:, None] * vt[first : first + k - 1].T


def _kmeans(points, k):
    return torch.as_tensor(KMeans(n_clusters=k, n_init=4, random_state=0).fit_predict(points))


def _jointly(weight, k, **options):
    rows, cols = _embedding(weight, k, **options)
    labels = _kmeans(np.vstack([rows, cols]), k)
    return labels[: len(rows)], labels[len(rows) :]


def _coclusters_signed_weights(weight, k):
    return _jointly(weight, k, signed=True)


def _coclusters_with_the_trivial_vector(weight, k):
    return _jointly(weight, k, first=0)


def _coclusters_without_degrees(weight, k):
    return _jointly(weight, k, normalise=False)


def _coclusters_each_side_alone(weight, k):
    rows, cols = _embedding(weight, k)
    return _kmeans(rows, k), _kmeans(cols, k)


def _ablation_inverted(weight, rows, cols):
    return weight * ~_in_blocks(rows, cols)


def _ablation_mask_transposed(weight, rows, cols):
    return weight * (cols[:, None] == rows[None, :])


MISTAKES = {
    "clusterability": [
        ("|W| instead of W^2", _c_unsquared, "expected"),
        ("signed weights, not squared", _c_signed, "random 6x8"),
        ("in-block weight not divided by the total", _c_not_normalised, "expected"),
    ],
    "spectral_coclusters": [
        ("signed W instead of |W|", _coclusters_signed_weights, "share a co-cluster"),
        ("the trivial first singular vector used", _coclusters_with_the_trivial_vector, "share a co-cluster"),
        ("k-means on each side separately", _coclusters_each_side_alone, "share a co-cluster"),
        ("no degree normalisation D^-1/2", _coclusters_without_degrees, "3 shuffled blocks"),
    ],
    "ablate_cross_cluster": [
        ("the in-cluster weights cut instead", _ablation_inverted, "values differ"),
        ("the mask built inputs by outputs", _ablation_mask_transposed, "raised"),
    ],
}
