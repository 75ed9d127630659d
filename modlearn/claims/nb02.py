"""Notebook 02 (local training): what its text claims, checked on its recorded values."""

from __future__ import annotations

from .claim import Claim, Results, for_run


def _every_method_learns(r: Results) -> bool:
    # measured (seed 0; chance 0.10), E2E / greedy / DGL / kernel / FF:
    # smoke digits .953 .936 .850 .936 (FF in _ff_learns_but_lags);
    # cpu digits .972 .975 .969 .930 .930 (seed 1: kernel .981, FF .925); cpu MNIST test split
    # .953 .957 .939 .954 .900
    floor = for_run(r, smoke=0.7, cpu=0.9, mnist=0.9)
    return all(r[f"mlp_{mode}_test_acc"] > floor for mode in ("e2e", "greedy", "dgl", "kernel"))


def _ff_learns_but_lags(r: Results) -> bool:
    # measured FF / E2E (seed 0): smoke digits .677 / .953 (300 steps); cpu digits .930 / .972 (1000 steps);
    # cpu MNIST .900 / .953 (1000 steps)
    floor = for_run(r, smoke=0.5, cpu=0.85, mnist=0.85)
    return floor < r["mlp_ff_test_acc"] < r["mlp_e2e_test_acc"] - 0.02


def _local_modes_hold_less(r: Results) -> bool:
    # exact byte counts (no noise): 0.456 smoke digits, 0.476 cpu digits, 0.578 cpu MNIST (the saved
    # 784-pixel input weighs more than digits' 64 pixels)
    low, high = (0.5, 0.62) if r.get("dataset") == "mnist" else (0.0, 0.5)
    return all(low < r[f"mlp_{mode}_memory_ratio"] <= high for mode in ("greedy", "dgl"))


def _depth_adds_little(r: Results) -> bool:
    # first -> last module, E2E / greedy / DGL (seed 0): smoke digits +.025 -.006 -.092;
    # cpu digits -.008 -.006 -.011; cpu MNIST +.005 +.006 -.012
    ceiling = for_run(r, smoke=0.05, cpu=0.02, mnist=0.02)
    return all(r[f"mlp_{mode}_depth_gain"] <= ceiling for mode in ("e2e", "greedy", "dgl"))


def _dgl_close_to_e2e(r: Results) -> bool:
    # mean test accuracy E2E - DGL: smoke (1 seed, 60 steps) .103; cpu digits (3 seeds) .005
    # (sd .003 / .002); cpu MNIST (3 seeds) .016 (sd .005 / .006)
    return r["mlp_e2e_acc_mean"] - r["mlp_dgl_acc_mean"] <= for_run(r, smoke=0.15, cpu=0.015, mnist=0.03)


CLAIMS: list[Claim] = [
    Claim("every method learns, well above chance", _every_method_learns),
    Claim("Forward-Forward learns but lags behind E2E", _ff_learns_but_lags),
    Claim(
        "at cpu the MLP comparison runs at least 3 seeds",
        lambda r: r["budget"] == "smoke" or r["seeds"] >= 3,
    ),
    Claim("DGL's mean accuracy stays close to E2E's", _dgl_close_to_e2e),
    Claim("depth adds little on this MLP: no method gains much from module 1 to K", _depth_adds_little),
    Claim(
        "greedy and DGL hold about half of E2E's activations per step, less saved on MNIST",
        _local_modes_hold_less,
    ),
    Claim(
        "K = 1 module is E2E, and more modules hold fewer activations",
        lambda r: (
            r["sweep_dgl_K1_activation_bytes"] == r["mlp_e2e_activation_bytes"]
            and r["sweep_dgl_K1_activation_bytes"]
            > r["sweep_dgl_K2_activation_bytes"]
            > r["sweep_dgl_K4_activation_bytes"]
        ),
    ),
    Claim(
        "the kernel proxy's hidden module trains end to end (more activations than E2E)",
        lambda r: r["mlp_kernel_activation_bytes"] > r["mlp_e2e_activation_bytes"],
    ),
    Claim(
        "Forward-Forward holds more activations than DGL (a positive and a negative pass)",
        lambda r: r["mlp_ff_memory_ratio"] > r["mlp_dgl_memory_ratio"],
    ),
    Claim(
        "cutting the CNN saves less memory than cutting the MLP (cpu/gpu; the CNN is skipped at smoke)",
        # exact: CNN 0.79 vs MLP 0.48 on digits, 0.73 vs 0.58 on MNIST
        lambda r: r["budget"] == "smoke" or r["cnn_dgl_memory_ratio"] > r["mlp_dgl_memory_ratio"],
    ),
    Claim(
        "DGL pipelined on 2 ranks trains the weights of DGL in one process",
        # measured: 0.0 (bit for bit, 1 thread per process) at smoke, cpu digits and cpu MNIST
        lambda r: r["pipe_max_weight_difference"] <= 1e-6,
    ),
    Claim(
        "only the pipeline has both modules at work at the same time",
        # measured: pipelined 0.68-0.75 of its run, one process 0 by construction
        lambda r: (
            r["pipe_pipelined_together"] > 0.3 and r["pipe_dgl_together"] == 0 and r["pipe_e2e_together"] == 0
        ),
    ),
    Claim(
        "the pipeline runs the same steps faster than DGL or E2E in one process",
        # a wall-clock ratio on shared cores, batch 256: over DGL 1.34 and over E2E 1.54 in notebook 02 at
        # cpu under the series runner (at batch 128 1.09-1.26 there, 1.4-2.3 in the quiet benchmark);
        # the text says faster, not by how much
        lambda r: r["pipe_speedup_over_dgl"] > 1.1 and r["pipe_speedup_over_e2e"] > 1.1,
        timed=True,
    ),
]

KEY_RESULT = (
    "MLP test acc E2E / greedy / DGL / kernel / FF {mlp_e2e_test_acc:.3f} / {mlp_greedy_test_acc:.3f} / "
    "{mlp_dgl_test_acc:.3f} / {mlp_kernel_test_acc:.3f} / {mlp_ff_test_acc:.3f}; DGL activation "
    "memory {mlp_dgl_memory_ratio:.2f}x E2E's"
)
