"""BIMT's model: `BioMLP`, an MLP whose neurons sit in space, and the contract that asks for one."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn

from ..api import contract_error
from .geometry import layer_folds, layer_sites, pairwise_distance


class BioMLP(nn.Module):
    """An MLP whose neurons sit in space (BIMT's "BioMLP").

    `linears[l]` maps neuron layer `l` to `l + 1`; `activation` follows every linear but the last.
    `forward(x: (batch, widths[0])) -> (batch, widths[-1])` in the original input/output order;
    swaps only move neurons, tracked in the buffers `in_perm` (position k reads input `in_perm[k]`)
    and `out_perm` (position k computes output `out_perm[k]`). With `num_tokens`, `x` holds
    `(batch, in_fold)` token ids, embedded into `widths[0] / in_fold` learned features each
    (modular addition). `geometry` is `"1d"`, `"2d"` or a list of per-layer site positions.
    """

    def __init__(
        self,
        widths: Sequence[int],
        geometry: str | Sequence[torch.Tensor] = "1d",
        activation: type[nn.Module] = nn.SiLU,
        in_fold: int = 1,
        out_fold: int = 1,
        spacing: float = 0.1,
        num_tokens: int | None = None,
    ) -> None:
        super().__init__()
        widths = [int(w) for w in widths]
        if len(widths) < 2 or min(widths) < 1:
            raise ValueError(f"widths={widths} must list at least two positive layer widths")
        if not spacing > 0:
            raise ValueError(f"spacing={spacing} (the layer distance l0) must be > 0")
        self.widths, self.spacing = widths, float(spacing)
        self.folds = layer_folds(widths, in_fold, out_fold)
        sites = (
            layer_sites(widths, geometry, in_fold, out_fold)
            if isinstance(geometry, str)
            else self._checked_sites(geometry)
        )
        self.geometry = geometry if isinstance(geometry, str) else "custom"
        self.linears = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:], strict=True))
        self.activation = activation()
        self.embedding = nn.Embedding(num_tokens, widths[0] // in_fold) if num_tokens else None
        for l, pos in enumerate(sites):
            self.register_buffer(f"sites_{l}", pos.float())
        for l in range(len(self.linears)):
            distance = pairwise_distance(self._neuron_positions(l + 1), self._neuron_positions(l))
            self.register_buffer(f"distance_{l}", distance)
        self.register_buffer("in_perm", torch.arange(widths[0]))
        self.register_buffer("out_perm", torch.arange(widths[-1]))

    def _checked_sites(self, geometry: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        sites = [torch.as_tensor(p, dtype=torch.float32) for p in geometry]
        if len(sites) != len(self.widths):
            raise ValueError(
                f"geometry has {len(sites)} layers but widths {self.widths} has "
                f"{len(self.widths)}: give one position tensor per neuron layer"
            )
        for l, (pos, width, fold) in enumerate(zip(sites, self.widths, self.folds, strict=True)):
            if pos.ndim != 2 or pos.shape[0] * fold != width or pos.shape[1] != sites[0].shape[1]:
                raise ValueError(
                    f"geometry of layer {l} has shape {tuple(pos.shape)}, expected "
                    f"({width // fold}, D) with the same D for every layer"
                )
        return sites

    @property
    def num_layers(self) -> int:
        """Number of neuron layers (`len(widths)`)."""
        return len(self.widths)

    def num_sites(self, layer: int) -> int:
        """Positions in neuron layer `layer` (its width divided by its fold)."""
        return self.widths[layer] // self.folds[layer]

    def sites(self, layer: int) -> torch.Tensor:
        """Site positions of neuron layer `layer`: `(num_sites, D)`, D = 1 or 2."""
        return getattr(self, f"sites_{layer}")

    def distance(self, linear: int) -> torch.Tensor:
        """Wire lengths `d_ij` of `linears[linear]`, shaped like its weight."""
        return getattr(self, f"distance_{linear}")

    def _neuron_positions(self, layer: int) -> torch.Tensor:
        """`(width, D)`: neuron `f * sites + s` of fold `f` sits at site `s`."""
        return self.sites(layer).repeat(self.folds[layer], 1)

    def coords(self, layer: int) -> torch.Tensor:
        """Drawing positions of the neurons of layer `layer`: `(width, 2)`.

        1-D: `(x, layer * spacing)`; 2-D grids are drawn in an oblique projection, stacked upward.
        """
        pos = self._neuron_positions(layer).cpu()
        height = torch.full((len(pos),), layer * self.spacing)
        if pos.shape[1] == 1:
            return torch.stack([pos[:, 0], height], dim=1)
        skew = 0.6 * self.spacing
        return torch.stack([pos[:, 0] + 0.5 * pos[:, 1], height + skew * pos[:, 1]], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embedding(x).flatten(1) if self.embedding is not None else x.flatten(1)
        if x.shape[1] != self.widths[0]:
            raise ValueError(f"input has {x.shape[1]} features but the first layer has {self.widths[0]}")
        h = x[:, self.in_perm]
        for l, linear in enumerate(self.linears):
            h = linear(h)
            if l < len(self.linears) - 1:
                h = self.activation(h)
        return h[:, torch.argsort(self.out_perm)]

    @torch.no_grad()
    def permute_layer(
        self,
        layer: int,
        perm: torch.Tensor,
        optimizer: torch.optim.Optimizer | None = None,
        moved: torch.Tensor | None = None,
    ) -> None:
        """Reorder the neurons of layer `layer` by `perm` (new neuron k = old neuron `perm[k]`).

        Incoming rows, biases, outgoing columns, the tracked input/output order and any matching
        optimizer state move together, so outputs and further training are unchanged. `moved`
        (optional) lists the only indices `perm` changes, so a swap copies two slices, not a layer.
        """
        perm = perm.to(self.in_perm.device)
        moved = torch.arange(len(perm), device=perm.device) if moved is None else moved.to(perm.device)
        if layer > 0:
            incoming = self.linears[layer - 1]
            _permute_parameter(incoming.weight, perm, moved, 0, optimizer)
            _permute_parameter(incoming.bias, perm, moved, 0, optimizer)
        else:
            self.in_perm[moved] = self.in_perm[perm[moved]]
        if layer < len(self.linears):
            _permute_parameter(self.linears[layer].weight, perm, moved, 1, optimizer)
        else:
            self.out_perm[moved] = self.out_perm[perm[moved]]


def _permute_parameter(
    param: nn.Parameter,
    perm: torch.Tensor,
    moved: torch.Tensor,
    dim: int,
    optimizer: torch.optim.Optimizer | None,
) -> None:
    tensors = [param.data]
    if optimizer is not None:
        tensors += [
            t
            for t in optimizer.state.get(param, {}).values()
            if torch.is_tensor(t) and t.shape == param.shape
        ]
    for t in tensors:
        t.index_copy_(dim, moved, t.index_select(dim, perm[moved]))


def bio_mlp(model: object, owner: str) -> BioMLP:
    """`model` if it is a `BioMLP`; else `ModelContractError` naming the converter `bimt.from_mlp`."""
    if isinstance(model, BioMLP):
        return model
    raise contract_error(
        owner,
        model,
        "a spatial BioMLP (an MLP whose neurons sit in space)",
        "pass bimt.from_mlp(model) to convert an MLP (ml.models.MLP, or an nn.Sequential of Linear "
        "layers and one activation), or build one with bimt.BioMLP(widths)",
    )
