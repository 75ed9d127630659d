"""Modular-DCM: deep causal generative models trained module by module.

Rahman & Kocaoglu, "Modular Learning of Deep Causal Generative Models for High-dimensional
Causal Inference", ICML 2024 (arXiv 2401.01426; authors' code Musfiqshohan/Modular-DCM).

A causal graph with latent confounders (an ADMG: directed edges plus bidirected ones) gets one
generator per observed variable, `V = G_V(pa(V), eps_V, {u_c : c touches V})`. The variables are
grouped into c-components, the c-components into the nodes of an *H-graph*, and the H-nodes are
trained one after the other (earlier generators frozen) with WGAN-GP on the joint their variables
must match. Interventions `do(X = x)` clamp X and sample its descendants with fresh noise.
Introduced in `tutorials/08_modular_dcm.ipynb`.

Modules, each importing only the ones before it: `graph` (ADMGs, c-components, H-graph, training
order), `scm` (tabular SCMs, distributions, distances), `generators` (variables, mechanisms, `DCM`),
`training` (WGAN-GP with `fit`), `demos` (front-door and coloured-digit models), `plots`.
"""

from .demos import (
    COLOUR_NAMES,
    COLOURS,
    coloured_digits_data,
    coloured_digits_scm,
    digit_pool,
    front_door_scm,
    pretrained_image_generator,
    render_coloured_digits,
)
from .generators import DCM, DCMConfig, MechanismGenerator, Variable, encode_rows, split_rows
from .graph import CausalGraph, TrainingStep, random_admg, scalability_table
from .plots import (
    compare_distributions,
    draw_graph,
    plot_interventional,
    plot_scalability,
    plot_tvd_curves,
)
from .scm import (
    TabularSCM,
    empirical_distribution,
    front_door,
    interventional_tvd,
    kl,
    naive_conditional,
    tvd,
)
from .training import (
    DCMExtras,
    DCMSchedule,
    TVDTracker,
    WassersteinGP,
    dcm_train_config,
    train_dcm,
    train_step,
)

__all__ = [
    "CausalGraph",
    "TrainingStep",
    "Variable",
    "DCMConfig",
    "MechanismGenerator",
    "DCM",
    "WassersteinGP",
    "DCMSchedule",
    "TVDTracker",
    "TabularSCM",
    "train_step",
    "train_dcm",
    "DCMExtras",
    "dcm_train_config",
    "random_admg",
    "scalability_table",
    "tvd",
    "kl",
    "interventional_tvd",
    "front_door",
    "naive_conditional",
    "empirical_distribution",
    "front_door_scm",
    "coloured_digits_scm",
    "coloured_digits_data",
    "digit_pool",
    "render_coloured_digits",
    "pretrained_image_generator",
    "draw_graph",
    "plot_interventional",
    "compare_distributions",
    "plot_scalability",
    "plot_tvd_curves",
    "encode_rows",
    "split_rows",
    "COLOURS",
    "COLOUR_NAMES",
]
