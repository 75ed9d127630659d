"""The network as circuit discovery sees it: an MLP's weights read into a float64 `LinearNet`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn

from ..bimt import mlp_layers
from ..models import SpatialMLP


@dataclass
class LinearNet:
    """An MLP as circuit discovery sees it: float64 copies of its weights.

    `weights[l]: (n_{l+1}, n_l)`, `biases[l]: (n_{l+1},)`; `prepare(x) -> h_0: (batch, n_0)`;
    the model's output `k` is the last layer's neuron `output_order[k]`. `gates` (optional) gives,
    for model inputs `x`, one `(batch, n_{l+1})` multiplier per hidden linear `l` (None: ungated),
    applied to the pre-activation: `h_{l+1} = act(g_l * z_l)`. Input-dependent masks (NeMo/MwT)
    are gates; the circuit treats them as fixed inputs, computed once on the clean batch and once
    on the corrupted one, so patching an edge never changes a mask.
    """

    weights: list[torch.Tensor]
    biases: list[torch.Tensor]
    activation: Callable[[torch.Tensor], torch.Tensor]
    prepare: Callable[[torch.Tensor], torch.Tensor]
    output_order: torch.Tensor
    gates: Callable[[torch.Tensor], list[torch.Tensor | None]] | None = None

    def gates_for(self, x: torch.Tensor) -> list[torch.Tensor | None]:
        """The gate of every hidden linear for model inputs `x` (None where ungated), float64."""
        if self.gates is None:
            return [None] * (len(self.weights) - 1)
        return [None if g is None else g.detach().double() for g in self.gates(x)]

    @property
    def widths(self) -> list[int]:
        return [self.weights[0].shape[1]] + [w.shape[0] for w in self.weights]

    @property
    def num_edges(self) -> int:
        return sum(w.numel() for w in self.weights)


def model_linears(model: nn.Module) -> tuple[list[nn.Linear], nn.Module]:
    """The `nn.Linear`s of an MLP in order and the activation between them.

    Understands a `SpatialMLP` such as `BioMLP` (`linears`, `activation`), an `ml.models.MLP` and a
    plain `nn.Sequential` MLP (`bimt.mlp_layers`); anything else raises `ModelContractError`.
    """
    if isinstance(model, SpatialMLP):
        return list(model.linears), model.activation
    return mlp_layers(model, "circuit discovery")


def as_linear_net(model: nn.Module) -> LinearNet:
    """Read `model`'s weights into a `LinearNet` (float64, on the model's device)."""
    linears, activation = model_linears(model)
    weights = [lin.weight.detach().double() for lin in linears]
    biases = [
        lin.bias.detach().double() if lin.bias is not None else torch.zeros_like(w[:, 0])
        for lin, w in zip(linears, weights, strict=True)
    ]
    device = weights[0].device
    in_perm, out_perm = _permutations(model, weights, device)

    embedding = model.embedding if isinstance(model, SpatialMLP) else None

    def prepare(x: torch.Tensor) -> torch.Tensor:
        x = x.to(device)
        h = (embedding(x).detach() if embedding is not None else x).flatten(1).double()
        if h.shape[1] != weights[0].shape[1]:
            raise ValueError(
                f"inputs have {h.shape[1]} features but the network expects {weights[0].shape[1]}"
            )
        return h if in_perm is None else h[:, in_perm]

    return LinearNet(weights, biases, lambda z: activation(z), prepare, out_perm)


def _permutations(
    model: nn.Module, weights: list[torch.Tensor], device
) -> tuple[torch.Tensor | None, torch.Tensor]:
    """Input and output orders of a `SpatialMLP` (swaps move neurons); identity for other MLPs."""
    if not isinstance(model, SpatialMLP):
        return None, torch.arange(weights[-1].shape[0], device=device)
    return model.in_perm.to(device).long(), torch.argsort(model.out_perm.to(device).long())
