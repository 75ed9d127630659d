"""`LocalConfig`: how a model is cut into modules and which local method trains them."""

from __future__ import annotations

from dataclasses import dataclass

from ..validate import ConfigFields

MODES = ("e2e", "greedy", "dgl", "kernel", "ff")
HEADS = ("linear", "mlp", "conv")
MODE_NAMES = {
    "e2e": "E2E backprop",
    "greedy": "greedy (sequential)",
    "dgl": "DGL (decoupled)",
    "kernel": "kernel proxy",
    "ff": "Forward-Forward",
}


@dataclass
class LocalConfig:
    """How a model is cut and trained without a global backward pass.

    - `mode`: `"e2e"` (baseline), `"greedy"` (sequential layer-wise, fully modular), `"dgl"`
      (decoupled greedy, Belilovsky, Eickenberg & Oyallon, ICML 2020), `"kernel"` (two-module kernel
      proxy, Duan & Principe; kerNET), `"ff"` (Forward-Forward, Hinton 2022; MLP only).
    - `num_modules`: K, the number of modules (default: one per block); `"kernel"` always has two:
      all blocks (the hidden module), then the head (the output layer).
    - `aux_head`: `"linear"` (the survey's small demo), `"mlp"` (DGL's spatially reduced MLP head:
      pool to 2x2, two hidden layers of `aux_hidden`), `"conv"` (DGL's conv head, CNN only).
    - `ff_theta`: Forward-Forward goodness threshold θ (2.0 in Hinton's and the reference code).
    - `kernel_min`: the ideal kernel's value for pairs of different classes (kerNET: 0 for ReLU nets).
    - `probe_epochs`: epochs of the linear probes that measure an E2E model's hidden blocks; with a
      budget in steps (`TrainConfig(epochs=None, max_steps=N)`) each probe trains N steps instead.
    """

    mode: str = "dgl"
    num_modules: int | None = None
    aux_head: str = "linear"
    aux_hidden: int = 256
    ff_theta: float = 2.0
    kernel_min: float = 0.0
    probe_epochs: int = 3

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        fields.choice("mode", MODES)
        fields.choice("aux_head", HEADS)
        fields.integer("num_modules", 1, optional=True)
        fields.integer("aux_hidden", 1)
        fields.integer("probe_epochs", 1)
        fields.number("ff_theta", 0, low_open=True)
        fields.number("kernel_min", -1, 1, high_open=True)
