"""modlearn: modular training of neural networks, taught with notebooks.

The few names a learner types are re-exported here; each method lives in its own module.
"""

from . import data, models, results, train, viz
from .api import ModelContractError, Run
from .data import Dataset, Split, iterate_batches, load_dataset, load_for_notebook
from .env import environment_report, resolve_device, seed_everything, setup
from .models import CNN, MLP, BlockModel, TinyViT, count_parameters, make_model
from .results import record, report
from .train import (
    CrossEntropy,
    History,
    Hook,
    Objective,
    Regularized,
    TrainConfig,
    TrainState,
    distributed,
    evaluate,
    fit,
    predict,
)

__version__ = "0.1.0"
__all__ = [
    "data",
    "models",
    "results",
    "train",
    "viz",
    "distributed",
    "ModelContractError",
    "Run",
    "BlockModel",
    "Dataset",
    "Split",
    "iterate_batches",
    "load_dataset",
    "load_for_notebook",
    "environment_report",
    "resolve_device",
    "seed_everything",
    "setup",
    "CNN",
    "MLP",
    "TinyViT",
    "count_parameters",
    "make_model",
    "record",
    "report",
    "CrossEntropy",
    "History",
    "Hook",
    "Objective",
    "Regularized",
    "TrainConfig",
    "TrainState",
    "evaluate",
    "fit",
    "predict",
]
