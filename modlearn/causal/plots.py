"""Figures of notebook 08: the ADMG, interventional distributions, the scalability curve."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
from matplotlib.patches import Patch

from .graph import CausalGraph

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def draw_graph(
    graph: CausalGraph, ax=None, title: str | None = None, groups: Sequence[Sequence[str]] = ()
) -> Figure:
    """The ADMG: directed edges solid, bidirected (confounders) dashed red; nodes coloured by `groups`
    (e.g. the H-nodes in training order), with a legend numbering the groups in the order given."""
    fig, ax = _figure(ax, (3.6, 2.6))
    dag = graph.dag.copy()
    for v in graph.nodes:  # layer = length of the longest path from a root
        dag.nodes[v]["layer"] = max([dag.nodes[p]["layer"] + 1 for p in graph.parents(v)], default=0)
    pos = nx.multipartite_layout(dag, subset_key="layer")
    colour_of = {v: f"C{i}" for i, g in enumerate(groups) for v in g}
    nx.draw_networkx_nodes(
        dag, pos, ax=ax, node_size=700, node_color=[colour_of.get(v, "lightgrey") for v in dag], alpha=0.6
    )
    nx.draw_networkx_labels(dag, pos, ax=ax, font_size=9)
    nx.draw_networkx_edges(dag, pos, ax=ax, node_size=700, arrowsize=15)
    nx.draw_networkx_edges(
        nx.Graph(list(graph.bidirected)),
        pos,
        ax=ax,
        style="dashed",
        edge_color="crimson",
        connectionstyle="arc3,rad=0.4",
        arrows=True,
        arrowstyle="<|-|>",
        node_size=700,
    )
    ax.axis("off")
    if groups:
        handles = [
            Patch(color=f"C{i}", alpha=0.6, label=f"{i + 1}: {', '.join(g)}") for i, g in enumerate(groups)
        ]
        ax.legend(handles=handles, fontsize=7, loc="lower center", bbox_to_anchor=(0.5, -0.25), ncols=2)
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_tvd_curves(curves: Mapping[str, tuple[Sequence[int], Sequence[float]]], ax=None) -> Figure:
    """TVD to the true interventional distribution against generator steps, one line per learner
    (`curves[name] = (steps, tvds)`, e.g. a `TVDTracker`'s `steps`, `tvd`)."""
    fig, ax = _figure(ax, (5.5, 3.0))
    for name, (steps, tvds) in curves.items():
        ax.plot(steps, tvds, "o-", markersize=3, label=name)
    ax.set_xlabel("generator steps (all training problems)")
    ax.set_ylabel("TVD to P(target | do(treatment))")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def plot_interventional(
    distributions: Mapping[str, np.ndarray], treatment: str = "X", outcome: str = "Y", value: int = 1, ax=None
) -> Figure:
    """Bars of `P(outcome = value | do(treatment = x))` for each x, one bar per estimate
    (`distributions[name]` has shape `(treatment size, outcome size)`)."""
    fig, ax = _figure(ax, (5.5, 3.0))
    series = {name: np.asarray(d)[:, value] for name, d in distributions.items()}
    _grouped_bars(ax, series, [f"do({treatment}={x})" for x in range(len(next(iter(series.values()))))])
    ax.set_ylabel(f"P({outcome}={value} | ...)")
    fig.tight_layout()
    return fig


def compare_distributions(
    distributions: Mapping[str, np.ndarray], variable: str, title: str | None = None, ax=None
) -> Figure:
    """Side-by-side bars of several distributions `(size,)` of one discrete variable."""
    fig, ax = _figure(ax, (4.5, 2.8))
    size = len(next(iter(distributions.values())))
    _grouped_bars(ax, distributions, [f"{variable}={k}" for k in range(size)])
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def _grouped_bars(ax, series: Mapping[str, np.ndarray], ticks: Sequence[str]) -> None:
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        xs = np.arange(len(values)) + (i - (len(series) - 1) / 2) * width
        ax.bar_label(ax.bar(xs, np.asarray(values), width, label=name), fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(ticks)), ticks)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="upper left")


def plot_scalability(rows: Sequence[Mapping[str, float]], ax=None) -> Figure:
    """Largest group of generators trained together vs graph size (Modular-DCM vs joint training)."""
    fig, ax = _figure(ax, (5, 3.2))
    n = [r["nodes"] for r in rows]
    ax.plot(n, [r["joint_training"] for r in rows], "s--", label="joint training (all N)")
    ax.plot(n, [r["largest_training_set"] for r in rows], "^:", label="Modular-DCM: largest variable set")
    ax.plot(n, [r["largest_group"] for r in rows], "o-", label="Modular-DCM: largest group trained")
    ax.set_xlabel("variables N in the random ADMG")
    ax.set_ylabel("mechanisms / variables")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _figure(ax, size):
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
        return fig, ax
    return ax.figure, ax
