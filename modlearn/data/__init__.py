"""Datasets as tensors: embedded digits, torchvision image sets, small synthetic tasks, on-device batches.

- `datasets`: `Split` and `Dataset`, what every loader returns;
- `loaders`: `load_dataset`, `load_for_notebook` (never fails for lack of network: falls back to digits);
- `files`: where the files live, reading and validating them (`DataUnavailableError`), downloading;
- `tasks`: modular addition, BIMT's symbolic formulas, two moons;
- `batches`: `iterate_batches`, `num_batches`.

Every name is importable from here: `from modlearn.data import load_dataset, Split`.
Introduced in `tutorials/00_tour.ipynb`.
"""

from .batches import iterate_batches, num_batches
from .datasets import Dataset, Split
from .files import DataUnavailableError, default_root, digits_arrays, mnist_on_disk, read_idx_split
from .loaders import DATASETS, canonical_name, load_dataset, load_for_notebook
from .tasks import SYMBOLIC_TASKS, modular_addition, symbolic_task, two_moons

__all__ = [
    "DATASETS",
    "SYMBOLIC_TASKS",
    "DataUnavailableError",
    "Dataset",
    "Split",
    "canonical_name",
    "default_root",
    "digits_arrays",
    "iterate_batches",
    "load_dataset",
    "load_for_notebook",
    "mnist_on_disk",
    "modular_addition",
    "num_batches",
    "read_idx_split",
    "symbolic_task",
    "two_moons",
]
