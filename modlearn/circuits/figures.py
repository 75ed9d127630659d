"""Pictures of circuits: one on its network's geometry, a grid of them, and Pareto curves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..models import SpatialMLP
from .acdc import Circuit

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def draw_circuit(model: SpatialMLP, circuit: Circuit, ax=None, title: str | None = None) -> Figure:
    """The circuit on the network's BIMT geometry (`viz.draw_network`): kept edges drawn, others faded."""
    from ..viz import draw_network

    label = (
        title
        if title is not None
        else (f"output {circuit.output}: {circuit.edges} edges, faithfulness {circuit.faithfulness:.2f}")
    )
    return draw_network(model, ax=ax, edge_mask=circuit.masks, title=label)


def plot_pareto(curves: dict[str, Sequence[Circuit]], ax=None, title: str | None = None) -> Figure:
    """Edges kept vs faithfulness, one line per network or method. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6)) if ax is None else (ax.figure, ax)
    for name, circuits in curves.items():
        points = sorted((c.edges, c.faithfulness) for c in circuits)
        ax.plot(*zip(*points, strict=True), "o-", label=name, alpha=0.85)
    ax.set_xscale("symlog", linthresh=10)
    ax.set_xlabel("edges kept")
    ax.set_ylabel("faithfulness (1 - metric / empty)")
    ax.set_ylim(-0.05, 1.05)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def draw_circuits(
    models: dict[str, SpatialMLP],
    found: dict[tuple[str, int], Circuit],
    output_names: Sequence[str] | None = None,
    size: float = 3.0,
) -> Figure:
    """A grid of circuits: one row per network, one column per output."""
    import matplotlib.pyplot as plt

    outputs = list(dict.fromkeys(o for _, o in found))
    fig, axes = plt.subplots(
        len(models), len(outputs), figsize=(size * len(outputs), size * 0.9 * len(models)), squeeze=False
    )
    for row, name in enumerate(models):
        for col, output in enumerate(outputs):
            circuit = found[(name, output)]
            label = output_names[output] if output_names else f"output {output}"
            draw_circuit(
                models[name],
                circuit,
                ax=axes[row, col],
                title=f"{name}, {label}: {circuit.edges} edges, F={circuit.faithfulness:.2f}",
            )
    fig.tight_layout()
    return fig
