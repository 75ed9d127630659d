"""Notebook 06 (BIMT): what its text claims, checked on its recorded values."""

from __future__ import annotations

from .claim import Claim, for_run

CLAIMS: list[Claim] = [
    Claim(
        "closed-form swap gains equal brute force; swaps keep the function and lower the cost",
        lambda r: (
            r["swap_gain_max_error"] < 1e-9
            and r["swap_max_output_change"] < 1e-6
            and r["swap_round_cost_drop"] > 0
            and r["swap_same_choice"] is True
        ),
    ),
    Claim(
        "the closed-form swap round is faster than the brute-force search",
        # measured speed-up: smoke 416 ([64, 36, 36, 10]); cpu ([196, 64, 64, 10], busy) 28, 60, 231
        lambda r: r["swap_speedup"] > 10,
        timed=True,
    ),
    Claim(
        "independence task: BIMT wires less than half of L1's",
        # measured ratio: smoke 0.40, cpu digits 0.13
        lambda r: (
            r["indep_wire_ratio_bimt_over_l1"] < 0.5 and r["indep_wire_bimt"] < 0.5 * r["indep_wire_l1"]
        ),
    ),
    Claim("BIMT still fits the task", lambda r: r["indep_mse_bimt"] < 0.03),
    Claim(
        "BIMT has the shortest wires of the five-way ablation",
        lambda r: (
            r["indep_wire_bimt"]
            < min(r["indep_wire_l1_local"], r["indep_wire_l1_swap"], r["indep_wire_none"])
        ),
    ),
    Claim(
        "L1 alone disconnects the two tasks at cpu (at smoke it shares no more neurons than no penalty)",
        # measured shared neurons L1 / none: smoke 31 / 34, cpu digits 1 / 36
        lambda r: r["indep_shared_l1"] <= for_run(r, smoke=1.0, cpu=0.1) * r["indep_shared_none"],
    ),
    Claim(
        "L1 and BIMT are both far more modular (Newman Q) than no regularization",
        # measured Q none / L1 / BIMT: smoke 0.20 / 0.35 / 0.48, cpu digits 0.19 / 0.51 / 0.53
        # (L1 vs BIMT is not claimed)
        lambda r: (
            min(r["indep_modularity_l1"], r["indep_modularity_bimt"])
            > r["indep_modularity_none"] + for_run(r, smoke=0.1, cpu=0.2)
        ),
    ),
    Claim(
        "the other tasks are learnt",
        lambda r: (
            r["feature_sharing_mse"] < 0.02
            and r["compositionality_mse"] < 0.03
            and r["two_moons_acc"] > 0.75
            and r["modadd_train_acc"] > 0.9
        ),
    ),
    Claim("the image network learns", lambda r: r["image_test_acc"] > 0.85),
    Claim(
        "the image network sparsifies: far fewer strong wires than the fresh network",
        # measured strong fraction trained / fresh: smoke 0.80 / 0.95, cpu digits 0.18 / 0.95,
        # cpu MNIST 0.27 / 0.95
        lambda r: (
            r["image_strong_fraction"] < for_run(r, smoke=0.9, cpu=0.5) * r["image_fresh_strong_fraction"]
        ),
    ),
]

KEY_RESULT = (
    "wire length BIMT / L1 {indep_wire_ratio_bimt_over_l1:.2f}x; closed-form swaps {swap_speedup:.0f}x "
    "faster than brute force; image test acc {image_test_acc:.3f}"
)
