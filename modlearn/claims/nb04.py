"""Notebook 04 (clusterability): what its text claims, checked on its recorded values."""

from __future__ import annotations

from .claim import Claim, for_run

CLAIMS: list[Claim] = [
    # measured (1 thread) at smoke / cpu digits / cpu MNIST test split seeds 0 and 1:
    # E2E C 0.328 / 0.332 / 0.375, 0.366 (random fitted 0.363 / 0.362 / 0.349, 0.352);
    # lambda = 40: C 0.989 / 1.000 / 0.999, 0.999 at accuracy 0.964 / 0.972 / 0.932, 0.942
    # (lambda = 0: 0.978 / 0.978 / 0.962, 0.942); ablation drop at lambda = 40 0.078 / 0.000 /
    # -0.001, -0.008 vs E2E 0.741 / 0.273 / 0.483, 0.477; transformer C 0.51 / 0.99 / 0.99
    # at lambda = 40 vs 0.37 / 0.49 / 0.49 at lambda = 0. cpu digits seed 1: E2E C 0.333 (random 0.365),
    # lambda = 40 C 1.000 at accuracy 0.939 (lambda = 0: 0.964), ablation drop 0.000 vs E2E 0.546
    Claim("planted blocks give C = 1", lambda r: abs(r["planted_C"] - 1.0) <= 1e-6),
    Claim(
        "random assignments give C = 1/k; fitted co-clusters of random weights more",
        lambda r: abs(r["random_assignment_C"] - 0.25) < 0.05 and r["random_fitted_C"] > 0.33,
    ),
    Claim(
        "the E2E model is no more clusterable than random weights of its shapes",
        lambda r: r["e2e_C"] < r["e2e_random_fitted_C"] + 0.05,
    ),
    Claim(
        "the loss makes the model far more clusterable (C towards 1); lambda = 0 does not",
        lambda r: (
            r["C_lambda40"] > r["e2e_C"] + 0.4
            and r["C_lambda40"] > for_run(r, smoke=0.97, cpu=0.97, mnist=0.97)
            and r["C_lambda0"] < r["e2e_C"] + 0.05
        ),
    ),
    Claim(
        "at a small accuracy cost",
        lambda r: r["acc_lambda40"] > r["acc_lambda0"] - 0.05 and r["acc_lambda40"] > 0.9,
    ),
    Claim(
        "cutting cross-cluster weights costs the lambda = 40 model little, "
        "and 10 points less than the E2E model",
        lambda r: (
            r["ablation_drop_lambda40"] < r["ablation_drop_e2e"] - 0.1
            and r["ablation_drop_lambda40"] < for_run(r, smoke=0.12, cpu=0.03, mnist=0.05)
        ),
    ),
    Claim(
        "the loss makes the transformer more clusterable too",
        lambda r: r["tf_C_lambda40"] > r["tf_C_lambda0"] + 0.1,
    ),
]

KEY_RESULT = (
    "C: random fitted {random_fitted_C:.3f}, E2E {e2e_C:.3f}, with the loss (lambda 40) "
    "{C_lambda40:.3f}; "
    "cutting cross-cluster weights costs {ablation_drop_e2e:.3f} (E2E) vs {ablation_drop_lambda40:.3f}"
)
