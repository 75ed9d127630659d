"""`modlearn.distributed` is `modlearn.train.distributed` (data-parallel `fit` under `torchrun`), kept
under its old name for scripts that import it."""

import sys

from .train import distributed

sys.modules[__name__] = distributed
