"""The one training loop of the series and what it is made of.

- `loop`: `fit` (the loop), `evaluate`, `predict`, `make_optimizer`;
- `objectives`: `Objective`, `CrossEntropy`, `MeanSquaredError`, `Regularized` (how methods plug in);
- `config`: `TrainConfig`; `state`: `History`, `TrainState`, `Hook`;
- `checkpoint`: checkpoint files (atomic, verified); `resume`: what an exact resume carries;
- `progress`: the progress bar; `distributed`: data-parallel `fit` under `torchrun`.

Every name is importable from here: `from modlearn.train import fit, TrainConfig, Hook`.
Introduced in `tutorials/01_e2e_backprop.ipynb`.
"""

from . import distributed
from .checkpoint import CHECKPOINT_FORMAT, load_checkpoint, read_checkpoint, save_checkpoint
from .config import OPTIMIZERS, TrainConfig
from .loop import evaluate, fit, make_optimizer, predict
from .objectives import Batch, CrossEntropy, MeanSquaredError, Metrics, Objective, Regularized
from .progress import progress_bar, show_progress
from .resume import RESUME_FIELDS
from .state import History, Hook, TrainState, as_hook

__all__ = [
    "distributed",
    "CHECKPOINT_FORMAT",
    "OPTIMIZERS",
    "RESUME_FIELDS",
    "Batch",
    "Metrics",
    "Objective",
    "CrossEntropy",
    "MeanSquaredError",
    "Regularized",
    "TrainConfig",
    "History",
    "TrainState",
    "Hook",
    "as_hook",
    "fit",
    "evaluate",
    "predict",
    "make_optimizer",
    "save_checkpoint",
    "load_checkpoint",
    "read_checkpoint",
    "show_progress",
    "progress_bar",
]
