"""On-device batches: slices of tensors already on their device, no `DataLoader` involved."""

from __future__ import annotations

from collections.abc import Iterator

import torch


def iterate_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield `(x_batch, y_batch)` slices of tensors already on their device.

    With `shuffle`, one index permutation (from `generator`, on the CPU) reorders the data once
    per pass; batches are then views, so no `DataLoader`, worker or host copy is involved.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    n = x.shape[0]
    if shuffle:
        perm = torch.randperm(n, generator=generator).to(x.device)
        x, y = x[perm], y[perm]
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield x[start : start + batch_size], y[start : start + batch_size]


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches `iterate_batches` yields for `n` samples."""
    return n // batch_size if drop_last else -(-n // batch_size)
