"""BIMT's settings: the paper's ablation modes and defaults, and its loop settings."""

from __future__ import annotations

from dataclasses import dataclass

from ..data import Dataset
from ..train import TrainConfig
from ..validate import ConfigFields, check_float

MODES = ("none", "l1", "l1_local", "l1_swap", "bimt")
MODE_NAMES = {
    "none": "no regularization",
    "l1": "L1",
    "l1_local": "L1 + locality",
    "l1_swap": "L1 + swaps",
    "bimt": "BIMT (L1 + locality + swaps)",
}
REDUCTIONS = ("sum", "mean")


@dataclass
class BIMTConfig:
    """BIMT settings; defaults are the paper's symbolic-formula runs (Liu, Gan & Tegmark 2023).

    `mode` is one of the paper's ablations (`MODES`, see `train_bimt`); `steps` is the number of
    optimizer steps. The loop's settings (lr, batch size, seed, ...) live in a `TrainConfig`
    (`paper_train`). `lam` is lambda_0 (1e-3 with `sum` cost; the paper uses 0.1 with `mean` for modular
    addition),
    multiplied by `lam_factors` between `lam_boundaries` (fractions of training). `weight_factor`
    is A (1 symbolic, 2 modular addition / MNIST).
    """

    mode: str = "bimt"
    steps: int = 20_000
    lam: float = 1e-3
    lam_factors: tuple[float, ...] = (1.0, 10.0, 1.0)
    lam_boundaries: tuple[float, ...] = (0.25, 0.75)
    weight_factor: float = 1.0
    reduction: str = "sum"
    penalize_bias: bool = True
    penalize_last: bool = True
    swap_every: int = 200
    top_k: int = 5

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        for name in ("steps", "swap_every", "top_k"):
            fields.integer(name, 1)
        fields.choice("mode", MODES)
        for name in ("lam", "weight_factor"):
            fields.number(name, 0)
        fields.each("lam_factors", check_float, 0)
        boundaries = fields.each("lam_boundaries", check_float, 0, 1)
        fields.choice("reduction", REDUCTIONS)
        for name in ("penalize_bias", "penalize_last"):
            fields.boolean(name)
        if len(self.lam_factors) != len(boundaries) + 1:
            raise ValueError(
                f"BIMTConfig(lam_factors={self.lam_factors}): lam_factors must have one entry more "
                f"than lam_boundaries={boundaries}; pass {len(boundaries) + 1} factors"
            )
        if list(boundaries) != sorted(boundaries):
            raise ValueError(
                f"BIMTConfig(lam_boundaries={boundaries}): lam_boundaries must be increasing "
                "fractions of training; sort them"
            )


def paper_train(data: Dataset, **changes) -> TrainConfig:
    """The paper's loop settings for `data`: AdamW without weight decay, lr 2e-3, full batch, seed 0,
    no progress bar; `changes` replace fields, e.g. `paper_train(data, lr=1e-3, batch_size=100)`."""
    defaults = dict(
        lr=2e-3, optimizer="adamw", weight_decay=0.0, batch_size=len(data.train), seed=0, progress=False
    )
    return TrainConfig(**{**defaults, **changes})
