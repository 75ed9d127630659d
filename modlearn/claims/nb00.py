"""Notebook 00 (the tour): what its text claims, checked on its recorded values."""

from __future__ import annotations

from .claim import Claim, for_run

CLAIMS: list[Claim] = [
    # MLP test accuracy measured, seed 0: smoke digits 0.953, cpu digits 0.972, cpu MNIST test split 0.952
    Claim(
        "reports the device and trains",
        lambda r: (
            r["device"] in ("cpu", "cuda", "mps")
            and r["tour_mlp_test_acc"] > for_run(r, smoke=0.90, cpu=0.93, mnist=0.92)
        ),
    ),
]

KEY_RESULT = "{dataset}, {train_samples} training images; the tour's MLP {tour_mlp_test_acc:.3f} test acc"
