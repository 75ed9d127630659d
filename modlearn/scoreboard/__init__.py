"""One model, every method, every metric: which kind of modularity, at what cost (notebook 09).

`train_all` trains one architecture (`scoreboard_mlp`: an MLP of 5 `Linear -> ReLU` blocks and a head,
cut into `MODULES` = 4 modules) with every method in `SCOREBOARD_METHODS`, for the same number of
optimizer steps (`step_budget`) and seeds; `score` measures each trained model with every metric in
`SCOREBOARD_METRICS` plus the two costs of its training (`COSTS`); `score_summary` gives mean and sd
over seeds, and `rank_correlations` asks whether the metrics agree (Spearman's rho across all trained
models). A method's entry calls the method's public `train_<method>` and returns its `Run`; a metric
calls the library function of the notebook that introduced it, so the numbers are that notebook's.

A learner adds a method or a metric with one entry; a method is any function that returns a `Run`
(`run.model` the trained network, `run.seconds` its training wall-clock)::

    def train_weight_decay(model, data, train):  # model: the seeded scoreboard MLP, left unchanged
        trained = ml.api.trainable_copy(model)
        with ml.api.Timer() as timer:
            history = ml.fit(trained, data, replace(train, optimizer="adamw", weight_decay=0.1))
        return ml.Run(trained, history, None, method="weight decay", seconds=timer.seconds)

    SCOREBOARD_METHODS["weight decay"] = train_weight_decay
    SCOREBOARD_METRICS["dead units"] = Metric(lambda model, data: ..., higher_is_better=False)

Its activation memory is that of one cross-entropy step of `run.model` unless `ACTIVATION_PROBES`
names another probe. One concern per file: `methods` (the model, the budget, the method entries),
`reading` (how a trained model is read: weight layers, units, modules, circuits), `metrics`,
`board` (`train_all`, `score`), `summary` (seeds, agreement, the table), `figures`.
"""

from .board import BoardRun, score, train_all
from .figures import plot_rank_correlations, plot_scoreboard
from .methods import (
    ACTIVATION_PROBES,
    BIMT_SETTINGS,
    FF_LOOP,
    MODULES,
    NAMES,
    SCOREBOARD_METHODS,
    ActivationProbe,
    ScoreboardMethod,
    first_batch,
    fresh_model,
    meta_model,
    plain_step_bytes,
    scoreboard_mlp,
    step_budget,
    step_memory,
    train_plain_e2e,
)
from .metrics import COSTS, FAITHFULNESS, SCOREBOARD_METRICS, TAUS, Metric, directions
from .reading import (
    CIRCUIT_BATCH,
    CIRCUIT_CLASS,
    CLASSES,
    THRESHOLDS,
    TOLERANCE,
    circuit_problem,
    masked_linear_net,
    matched_module,
    module_sweep,
    retained_weights,
    unit_activity,
    units_kept,
    weight_layers,
    weight_tensors,
)
from .summary import (
    FORMATS,
    FUNCTION_METRICS,
    SHORT,
    WEIGHT_METRICS,
    best_method,
    family_agreement,
    markdown_table,
    normalise,
    oriented,
    rank_correlations,
    score_summary,
)

__all__ = [
    "ACTIVATION_PROBES",
    "ActivationProbe",
    "BIMT_SETTINGS",
    "CIRCUIT_BATCH",
    "CIRCUIT_CLASS",
    "CLASSES",
    "COSTS",
    "FAITHFULNESS",
    "FF_LOOP",
    "FORMATS",
    "FUNCTION_METRICS",
    "MODULES",
    "Metric",
    "NAMES",
    "SCOREBOARD_METHODS",
    "SCOREBOARD_METRICS",
    "SHORT",
    "ScoreboardMethod",
    "TAUS",
    "THRESHOLDS",
    "TOLERANCE",
    "BoardRun",
    "WEIGHT_METRICS",
    "best_method",
    "step_budget",
    "circuit_problem",
    "directions",
    "family_agreement",
    "first_batch",
    "fresh_model",
    "markdown_table",
    "masked_linear_net",
    "matched_module",
    "meta_model",
    "module_sweep",
    "normalise",
    "oriented",
    "plain_step_bytes",
    "plot_rank_correlations",
    "plot_scoreboard",
    "rank_correlations",
    "retained_weights",
    "score",
    "score_summary",
    "scoreboard_mlp",
    "step_memory",
    "train_all",
    "train_plain_e2e",
    "unit_activity",
    "units_kept",
    "weight_layers",
    "weight_tensors",
]
