"""What BIMT's structure metrics read: wire length, strong wires, sparsity, modularity, shared neurons."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from ..data import Dataset
from ..train import evaluate
from .model import BioMLP, bio_mlp
from .objective import task_objective
from .swaps import optimise_layout

if TYPE_CHECKING:
    import networkx as nx


def _abs_weights(model: BioMLP) -> list[torch.Tensor]:
    return [linear.weight.detach().abs().float().cpu() for linear in model.linears]


def wire_length(model: BioMLP) -> float:
    """|W|-weighted mean wire length `sum |W_ij| d_ij / sum |W_ij|` over every linear."""
    weights = _abs_weights(bio_mlp(model, "bimt metrics"))
    total = sum(float((w * model.distance(l).float().cpu()).sum()) for l, w in enumerate(weights))
    return total / max(sum(float(w.sum()) for w in weights), 1e-12)


def strong_edges(model: BioMLP, threshold: float = 0.05) -> list[torch.Tensor]:
    """Per linear, the bool mask of wires with |w| > `threshold` x that layer's largest |w|."""
    return [w > threshold * w.max() for w in _abs_weights(bio_mlp(model, "bimt metrics"))]


def strong_fraction(model: BioMLP, threshold: float = 0.05) -> float:
    """Fraction of wires above `threshold` x their layer's largest |w| (the wires the drawings show)."""
    masks = strong_edges(model, threshold)
    return sum(int(m.sum()) for m in masks) / sum(m.numel() for m in masks)


def sparsity(model: BioMLP, threshold: float = 0.01) -> float:
    """Fraction of weights below `threshold` x their layer's largest |w| (0 = dense, 1 = empty)."""
    return 1.0 - strong_fraction(model, threshold)


def abs_weight_graph(weights: Sequence[torch.Tensor], threshold: float = 0.01) -> nx.Graph:
    """The |W| graph (networkx) of consecutive layers `weights[l]: (out, in)`: nodes `(layer, neuron)`,
    edges weighted by |w| where |w| > `threshold` x that layer's largest |w|."""
    import networkx as nx

    absolute = [w.detach().abs().float().cpu() for w in weights]
    graph = nx.Graph()
    for l, width in enumerate([absolute[0].shape[1]] + [w.shape[0] for w in absolute]):
        graph.add_nodes_from((l, k) for k in range(width))
    for l, w in enumerate(absolute):
        rows, cols = (w > threshold * w.max()).nonzero(as_tuple=True)
        graph.add_weighted_edges_from(
            ((l, int(c)), (l + 1, int(r)), float(w[r, c])) for r, c in zip(rows, cols, strict=True)
        )
    return graph


def newman_modularity(model: BioMLP, threshold: float = 0.01) -> float:
    """Newman modularity Q of `model`'s |W| graph: see `weights_modularity`."""
    return weights_modularity([linear.weight for linear in bio_mlp(model, "bimt metrics").linears], threshold)


def weights_modularity(weights: Sequence[torch.Tensor], threshold: float = 0.01) -> float:
    """Newman modularity Q of the |W| graph of consecutive layers `weights[l]: (out, in)` (any MLP's
    Linear weights), split by greedy modularity maximisation (networkx); 0 for a graph without edges.

    Two equal components with no edge between them give Q = 1 - 2 (1/2)^2 = 0.5; c of them 1 - 1/c.
    """
    from networkx.algorithms import community

    graph = abs_weight_graph(weights, threshold)
    graph.remove_nodes_from([n for n, degree in dict(graph.degree()).items() if degree == 0])
    if graph.number_of_edges() == 0:
        return 0.0
    parts = community.greedy_modularity_communities(graph, weight="weight")
    return float(community.modularity(graph, parts, weight="weight"))


def output_subgraphs(
    model: BioMLP, groups: Sequence[Sequence[int]] | None = None, threshold: float = 0.05
) -> list[list[torch.Tensor]]:
    """For each group of outputs (original indices; default each output alone), the bool masks of
    the neurons of every layer that reach the group through strong wires (see `strong_edges`).
    """
    masks = strong_edges(model, threshold)
    groups = [[o] for o in range(model.widths[-1])] if groups is None else groups
    position = torch.argsort(model.out_perm.cpu())  # position of each original output
    result = []
    for group in groups:
        active = torch.zeros(model.widths[-1], dtype=torch.bool)
        active[position[list(group)]] = True
        layers = [active]
        for mask in reversed(masks):
            active = mask[active].any(dim=0)
            layers.insert(0, active)
        result.append(layers)
    return result


def shared_hidden_neurons(
    model: BioMLP, groups: Sequence[Sequence[int]] | None = None, threshold: float = 0.05
) -> int:
    """Hidden neurons used by more than one output group's sub-graph (0 = disconnected tasks)."""
    subgraphs = output_subgraphs(model, groups, threshold)
    hidden = range(1, model.num_layers - 1)
    return sum(int((torch.stack([sub[l] for sub in subgraphs]).sum(0) > 1).sum()) for l in hidden)


def bimt_metrics(
    model: BioMLP, data: Dataset, groups: Sequence[Sequence[int]] | None = None
) -> dict[str, float]:
    """Test loss (and accuracy), wire length, Newman modularity, shared hidden neurons, sparsity."""
    scores = evaluate(model, data, task_objective(data))
    name = "test_mse" if data.train.y.is_floating_point() else "test_loss"
    result = {name: scores.pop("loss"), **{f"test_{k}": v for k, v in scores.items()}}
    result.update(
        wire_length=wire_length(model),
        modularity=newman_modularity(model),
        shared_hidden=shared_hidden_neurons(model, groups),
        sparsity=sparsity(model),
    )
    return result


def layout_wire_length(weights: Sequence[torch.Tensor], weight_factor: float = 1.0) -> float:
    """`wire_length` of consecutive layers `weights[l]: (out, in)` on a 1-D geometry after
    `optimise_layout`: how short the wires of these weights can be made by moving neurons alone
    (any network, so that a trained layout is no advantage)."""
    widths = [weights[0].shape[1]] + [w.shape[0] for w in weights]
    bio = BioMLP(widths, "1d")
    with torch.no_grad():
        for linear, weight in zip(bio.linears, weights, strict=True):
            linear.weight.copy_(weight.detach().float().cpu())
    optimise_layout(bio, weight_factor)
    return wire_length(bio)
