"""`Split` and `Dataset`: the tensors every loader returns and every method trains on."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Split:
    """One split: `x: (n, ...)` inputs and `y: (n, ...)` targets, on one device."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}: "
                "inputs and targets must have the same first dimension"
            )

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device | str) -> Split:
        """The same split on `device` (no copy when it is already there)."""
        return Split(self.x.to(device), self.y.to(device))

    def subset(self, n: int, seed: int = 0) -> Split:
        """A seeded random subset of `n` samples (all of them when `n >= len(self)`)."""
        if n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return Split(self.x[idx.to(self.x.device)], self.y[idx.to(self.y.device)])


@dataclass
class Dataset:
    """Train/val/test splits plus what a model needs to know about them."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    description: str
    class_names: list[str] = field(default_factory=list)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. `(1, 28, 28)`."""
        return tuple(self.train.x.shape[1:])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={len(self.train)}, val={len(self.val)}, "
            f"test={len(self.test)}, input_shape={self.input_shape}, classes={self.num_classes})"
        )
