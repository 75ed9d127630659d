"""Notebook 01 (end-to-end backprop): what its text claims, checked on its recorded values."""

from __future__ import annotations

from .claim import Claim, for_run

CLAIMS: list[Claim] = [
    # measured, seed 0 (smoke digits / cpu digits / cpu MNIST test split):
    # MLP 0.969 / 0.975 / 0.945, CNN 0.994 / 0.992 / 0.980; parameters MLP 150,794 (digits) or 335,114
    # (MNIST), CNN 94,410
    Claim("hand-written backprop equals autograd", lambda r: r["backprop_max_abs_error"] < 1e-10),
    Claim(
        # measured: 108,036 bytes at batch 32, 1,728,516 at 512; weights 603,176 bytes
        "activations grow in proportion to the batch, and at batch 512 outweigh the weights",
        lambda r: (
            abs(r["activation_bytes_batch512"] / r["activation_bytes_batch32"] - 512 / 32) < 0.1
            and r["activation_bytes_batch512"] > r["weight_bytes"]
        ),
    ),
    Claim(
        "the MLP learns",
        lambda r: r["mlp_test_acc"] >= for_run(r, smoke=0.93, cpu=0.94, mnist=0.91),
    ),
    Claim(
        "the CNN learns",
        lambda r: r["cnn_test_acc"] >= for_run(r, smoke=0.95, cpu=0.96, mnist=0.95),
    ),
    Claim("the CNN has fewer parameters than the MLP", lambda r: r["cnn_params"] < r["mlp_params"]),
    Claim(
        "the baseline is the better model",
        lambda r: (
            r["baseline_acc"] == max(r["mlp_test_acc"], r["cnn_test_acc"])
            and r["baseline_model"] == ("CNN" if r["cnn_test_acc"] >= r["mlp_test_acc"] else "MLP")
        ),
    ),
]

KEY_RESULT = (
    "backprop by hand vs autograd max error {backprop_max_abs_error:.1e}; test acc MLP "
    "{mlp_test_acc:.3f}, CNN {cnn_test_acc:.3f}"
)
