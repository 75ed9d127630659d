"""BIMT's converters: an MLP into a `BioMLP` (`from_mlp`) and back (`to_mlp`), and the MLP reading
both of them (and circuit discovery) share (`mlp_layers`)."""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
import torch.nn as nn

from ..api import block_model, contract_error
from ..models import MLP
from .model import BioMLP, bio_mlp


def mlp_layers(model: nn.Module, owner: str) -> tuple[list[nn.Linear], nn.Module]:
    """The `nn.Linear`s of an MLP in order and the activation between them.

    `model`: an `ml.models.MLP`, or any `BlockModel` / plain `nn.Sequential` (converted with
    `api.block_model`) whose blocks are `[Flatten,] Linear, activation` (one activation for all)
    and whose head is a `Linear`. Raises `ModelContractError` for anything else.
    """
    blocks = block_model(model, owner)
    linears, activations = [], []
    for block in blocks.blocks:
        layers = list(block) if isinstance(block, nn.Sequential) else [block]
        layers = [m for m in layers if not isinstance(m, nn.Flatten)]
        if len(layers) != 2 or not isinstance(layers[0], nn.Linear) or isinstance(layers[1], nn.Linear):
            raise _not_an_mlp(owner, model)
        linears.append(layers[0])
        activations.append(layers[1])
    head = blocks.head
    head = head[0] if isinstance(head, nn.Sequential) and len(head) == 1 else head
    if not isinstance(head, nn.Linear) or len({repr(a) for a in activations}) != 1:
        raise _not_an_mlp(owner, model)
    return [*linears, head], activations[0]


def _not_an_mlp(owner: str, model: nn.Module) -> ValueError:
    return contract_error(
        owner,
        model,
        "an MLP: blocks of [Flatten,] Linear and one activation, then a Linear head",
        "pass an ml.models.MLP or an nn.Sequential(Flatten, Linear, ReLU, ..., Linear)",
    )


def from_mlp(model: nn.Module, geometry: str | Sequence[torch.Tensor] = "1d", spacing: float = 0.1) -> BioMLP:
    """A `BioMLP` computing what the MLP `model` computes (an `ml.models.MLP`, or an `nn.Sequential`
    of Linear layers and one activation, see `mlp_layers`): the same widths, weights, biases and
    activation, neuron k of every layer at site k of `geometry`. `x: (batch, *input)` ->
    `(batch, classes)` as before."""
    linears, activation = mlp_layers(model, "bimt.from_mlp")
    widths = [linears[0].in_features] + [linear.out_features for linear in linears]
    bio = BioMLP(widths, geometry, type(activation), spacing=spacing)
    bio.activation = copy.deepcopy(activation)  # keeps its settings (e.g. LeakyReLU's slope)
    with torch.no_grad():
        for mine, theirs in zip(bio.linears, linears, strict=True):
            mine.weight.copy_(theirs.weight)
            if theirs.bias is None:
                mine.bias.zero_()
            else:
                mine.bias.copy_(theirs.bias)
    return bio.to(linears[-1].weight.device)


def to_mlp(model: BioMLP) -> MLP:
    """An `ml.models.MLP` computing what `model` computes, its input and output orders folded into
    the first and last weights (hidden neurons keep their sites' order). No token embedding."""
    bio_mlp(model, "bimt.to_mlp")
    if model.embedding is not None or max(model.folds) > 1:
        raise ValueError("to_mlp: a BioMLP with a token embedding or folds has no plain-MLP twin")
    mlp = MLP(model.widths[0], model.widths[1:-1], model.widths[-1], type(model.activation))
    linears, _ = mlp_layers(mlp, "bimt.to_mlp")
    inputs, outputs = torch.argsort(model.in_perm.cpu()), torch.argsort(model.out_perm.cpu())
    with torch.no_grad():
        for l, (mine, theirs) in enumerate(zip(linears, model.linears, strict=True)):
            weight, bias = theirs.weight.detach().cpu(), theirs.bias.detach().cpu()
            if l == 0:
                weight = weight[:, inputs]
            if l == len(linears) - 1:
                weight, bias = weight[outputs], bias[outputs]
            mine.weight.copy_(weight)
            mine.bias.copy_(bias)
    return mlp.to(model.in_perm.device)
