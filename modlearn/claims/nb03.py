"""Notebook 03 (Deep Incubation): what its text claims, checked on its recorded values."""

from __future__ import annotations

from .claim import Claim, for_run

CLAIMS: list[Claim] = [
    # measured (seed 0, 1 thread) at smoke / cpu digits / cpu MNIST test split: meta 0.978 / 0.986 /
    # 0.956; hybrids >= 0.983 / 0.994 / 0.958; assembled 0.967 / 0.967 / 0.932; fine-tuned 0.981 /
    # 0.983 / 0.952; E2E 0.978 / 0.989 / 0.959; 10 % of the data: fine-tuned 0.900 / 0.905 / 0.888,
    # E2E 0.916 / 0.930 / 0.892
    Claim(
        "gradients flow through frozen downstream stages; only the target stage's weights change",
        lambda r: r["frozen_downstream_pass_gradient"] and r["only_target_weights_get_gradient"],
    ),
    Claim("parallel incubation equals sequential", lambda r: r["parallel_equals_sequential"] is True),
    Claim(
        "the assembled model works before any joint training",
        lambda r: r["assembled_test_acc"] >= 0.85 and r["assembled_test_acc"] > 8 * r["chance_acc"],
    ),
    Claim(
        "fine-tuning keeps or improves the assembled model",
        lambda r: (
            r["finetuned_test_acc"] >= 0.94 and r["finetuned_test_acc"] >= r["assembled_test_acc"] - 0.01
        ),
    ),
    Claim("E2E and the meta model learn", lambda r: r["e2e_test_acc"] >= 0.94 and r["meta_test_acc"] >= 0.93),
    Claim("every hybrid learns", lambda r: r["worst_hybrid_val_acc"] >= 0.9),
    Claim(
        "fine-tuned and E2E end within a few points of each other (one seed, no ranking)",
        lambda r: abs(r["finetuned_minus_e2e"]) <= for_run(r, smoke=0.02, cpu=0.02, mnist=0.03),
    ),
    Claim(
        "on 10 % of the data, incubation and E2E end within 5 points of each other",
        lambda r: (
            min(r["low_data_fine_tuned_test_acc"], r["low_data_e2e_test_acc"]) >= 0.82
            and abs(r["low_data_finetuned_minus_e2e"]) <= 0.05
        ),
    ),
    Claim(
        "both incubation timings are measured",
        lambda r: r["incubation_sequential_s"] > 0 and r["incubation_parallel_s"] > 0,
    ),
]

KEY_RESULT = (
    "meta model {meta_test_acc:.3f}; assembled before fine-tuning {assembled_test_acc:.3f}, fine-tuned "
    "{finetuned_test_acc:.3f}, E2E {e2e_test_acc:.3f}"
)
