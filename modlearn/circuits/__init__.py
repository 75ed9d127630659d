"""Automated circuit discovery on MLPs: edge-level activation patching and ACDC.

ACDC (Conmy, Mavor-Parker, Lynch, Heimersheim, Garriga-Alonso, "Towards Automated Circuit
Discovery for Mechanistic Interpretability", NeurIPS 2023), applied the way Nainani
("Evaluating Brain-Inspired Modular Training in Automated Circuit Discovery for Mechanistic
Interpretability", arXiv 2401.03646) applies it to BIMT-trained MLPs. Notebook 07.

A network `h_{l+1} = act(W_l h_l + b_l)` (no activation after the last layer) is a graph whose
nodes are neurons and whose edges are weights. *Removing* edge `j -> i` of layer `l` means that
neuron `i` receives `W_ij * r_j` instead of `W_ij * h_j`, where `h_j` is the sender's activation
on the clean input and `r_j` a reference: its activation on a paired corrupted input
(``"patch"``), zero (``"zero"``) or its mean activation (``"mean"``). With a 0/1 mask `M_l`:

    z_{l+1} = W_l h_l + b_l - ((1 - M_l) * W_l) (h_l - r_l)

The metric compares the circuit's output with the full model's on the clean batch (KL divergence,
MSE, or the gap in logit difference), divided by its value for the empty circuit, so that
`faithfulness = 1 - metric / empty_metric` is 1 for the full model and 0 for the empty circuit.

Files, one concern each: `networks` (`LinearNet`, reading an MLP), `patching` (`PatchingProblem`,
`patched_linear`), `acdc` (`Circuit`, `ACDCConfig`, `acdc`, `discover`), `baselines` (attribution
patching, magnitude pruning), `reading` (faithfulness levels, overlaps, applying a circuit),
`experiments` (notebook 07's batches and tables), `figures`.
"""

from .acdc import ACDCConfig, Circuit, acdc, acdc_sweep, bool_masks, discover
from .baselines import (
    attribution_scores,
    baseline_curve,
    magnitude_scores,
    prune_dangling,
    ranked_circuit,
)
from .experiments import class_batches, discover_outputs, format_summary, paired_corruption, summarize
from .figures import draw_circuit, draw_circuits, plot_pareto
from .networks import LinearNet, as_linear_net, model_linears
from .patching import ABLATIONS, METRICS, ROUND_OFF, PatchingProblem, patched_linear
from .reading import (
    apply_circuit,
    circuit_output,
    circuit_overlap,
    edges_at_faithfulness,
    edges_for_faithfulness,
)

__all__ = [
    "ABLATIONS",
    "METRICS",
    "ROUND_OFF",
    "ACDCConfig",
    "Circuit",
    "LinearNet",
    "PatchingProblem",
    "acdc",
    "acdc_sweep",
    "apply_circuit",
    "as_linear_net",
    "attribution_scores",
    "baseline_curve",
    "bool_masks",
    "circuit_output",
    "circuit_overlap",
    "class_batches",
    "discover",
    "discover_outputs",
    "draw_circuit",
    "draw_circuits",
    "edges_at_faithfulness",
    "edges_for_faithfulness",
    "format_summary",
    "magnitude_scores",
    "model_linears",
    "paired_corruption",
    "patched_linear",
    "plot_pareto",
    "prune_dangling",
    "ranked_circuit",
    "summarize",
]
