"""Plausible mistakes in notebook 09's exercises; each must fail its checker (tests/test_exercises.py)."""

import numpy as np


def _average_ranks(x):
    x = np.asarray(x, dtype=float)
    return (x[None, :] < x[:, None]).sum(axis=1) + ((x[None, :] == x[:, None]).sum(axis=1) + 1) / 2


def _spearman_on_the_raw_values(a, b):
    return float(np.corrcoef(a, b)[0, 1])  # Pearson's r: linear, not rank, agreement


def _spearman_with_ordinal_ranks(a, b):
    def ranks(x):
        return np.argsort(np.argsort(x)) + 1.0  # tied values get different ranks

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def _spearman_by_the_no_ties_formula(a, b):
    d = _average_ranks(a) - _average_ranks(b)
    n = len(d)
    return float(1 - 6 * (d**2).sum() / (n * (n**2 - 1)))  # exact only without ties


def _totals(widths):
    return sum(a * b for a, b in zip(widths[:-1], widths[1:], strict=True))


def _retention_as_the_fraction_of_units(kept, widths):
    return sum(kept) / sum(widths[1:])


def _retention_without_the_inputs(kept, widths):
    return sum(a * b for a, b in zip(kept[:-1], kept[1:], strict=True)) / _totals(widths)


def _retention_with_the_input_layer_whole(kept, widths):
    first = widths[0] * widths[1]
    rest = sum(a * b for a, b in zip(kept[:-1], kept[1:], strict=True))
    return (first + rest) / _totals(widths)


def _scaled(values, higher_is_better, flip=True, by_range=True):
    x = np.asarray(values, dtype=float)
    low, high = np.nanmin(x), np.nanmax(x)
    if not high > low:
        return list(np.where(np.isnan(x), np.nan, 0.5))
    scaled = (x - low) / (high - low) if by_range else x / high
    return list(scaled if higher_is_better or not flip else 1 - scaled)


def _scores_ignoring_the_direction(values, higher_is_better):
    return _scaled(values, higher_is_better, flip=False)


def _scores_divided_by_the_max(values, higher_is_better):
    return _scaled(values, higher_is_better, by_range=False)


def _scores_with_nan_as_zero(values, higher_is_better):
    return list(np.nan_to_num(_scaled(values, higher_is_better), nan=0.0))


def _scores_with_min_and_max_not_nan_aware(values, higher_is_better):
    x = np.asarray(values, dtype=float)
    scaled = (x - x.min()) / (x.max() - x.min()) if x.max() > x.min() else np.full_like(x, 0.5)
    return list(scaled if higher_is_better else 1 - scaled)


MISTAKES = {
    "spearman": [
        ("Pearson's r on the raw values", _spearman_on_the_raw_values, "random 10 values"),
        ("ordinal ranks (argsort of argsort), ties not averaged", _spearman_with_ordinal_ranks, "ties"),
        ("1 - 6 sum d^2 / (n (n^2 - 1)) on tied data", _spearman_by_the_no_ties_formula, "ties"),
    ],
    "retained_weights": [
        ("the fraction of units kept", _retention_as_the_fraction_of_units, "a typical module"),
        ("the inputs not counted as kept", _retention_without_the_inputs, "every unit kept"),
        ("the input layer's weights all kept", _retention_with_the_input_layer_whole, "a typical module"),
    ],
    "normalised": [
        ("the metric's direction ignored", _scores_ignoring_the_direction, "lower is better"),
        ("divided by the max, not the range", _scores_divided_by_the_max, "higher is better"),
        ("NaN turned into 0", _scores_with_nan_as_zero, "expected nan, got 0"),
        ("np.min / np.max, which NaN poisons", _scores_with_min_and_max_not_nan_aware, "one NaN"),
    ],
}
