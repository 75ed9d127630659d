"""`load_dataset` and `load_for_notebook`: a dataset as standardized tensors with a seeded split.

Every loader returns a `Dataset` whose `train`, `val` and `test` are `Split`s of tensors
`x: (n, channels, height, width)` float32 (standardized) and `y: (n,)` int64.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..env import BUDGETS
from .datasets import Dataset, Split
from .files import (
    Arrays,
    DataUnavailableError,
    check_no_empty_split,
    digits_arrays,
    download_files,
    mnist_on_disk,
    read_from_disk,
    resolve_root,
)

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
}
_CLASS_NAMES = {
    "fashion-mnist": [
        "T-shirt",
        "trouser",
        "pullover",
        "dress",
        "coat",
        "sandal",
        "shirt",
        "sneaker",
        "bag",
        "boot",
    ],
    "cifar10": ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}


def canonical_name(name: str) -> str:
    """Normalise a dataset name or raise a `ValueError` listing the known ones."""
    key = str(name).lower().strip()
    key = _ALIASES.get(key, key)
    if key not in DATASETS:
        raise ValueError(
            f"unknown dataset {name!r}: choose one of {DATASETS} ('digits' is embedded and works offline)"
        )
    return key


def load_dataset(
    name: str,
    root: str | Path | None = None,
    *,
    resize: int | None = None,
    download: bool = False,
    seed: int = 0,
    val_fraction: float = 0.1,
    max_train: int | None = None,
    verbose: bool = True,
) -> Dataset:
    """Load `name` as tensors with a deterministic split.

    - `"digits"`: scikit-learn's 8x8 handwritten digits (1,797 real images, no network);
      `resize=28` upsamples them so MNIST-sized models fit.
    - `"mnist"`, `"fashion-mnist"`, `"cifar10"`: read from `root` (else `MODLEARN_DATA`, else a
      user cache). Files are downloaded only when `download=True` or when they are missing
      from an existing folder; a folder that does not exist is created only with `download=True`.
      With a training split on disk, `val_fraction` of it validates and the test split tests;
      when only the test split is on disk it is split 80/10/10 into train/val/test (and said so).

    Every file read is validated (IDX header, size, shapes, counts, labels in 0..9); a missing
    or broken file raises `DataUnavailableError` naming it. Bad arguments raise `ValueError`.
    `max_train` keeps a seeded subset of the training split (budgets use it).
    """
    key = canonical_name(name)
    _check_arguments(root=root, resize=resize, seed=seed, val_fraction=val_fraction, max_train=max_train)
    if key == "digits":
        x, y = digits_arrays()
        parts = _three_way_split(x, y, seed, val_fraction, test_fraction=0.2)
        description = "scikit-learn digits (1,797 real 8x8 images, embedded, offline)"
    else:
        parts, description = _load_image_dataset(key, root, download, seed, val_fraction)
    train, val, test = (_to_float_images(x) for x, _ in parts)
    if resize and tuple(train.shape[-2:]) != (resize, resize):
        train, val, test = (
            F.interpolate(t, size=(resize, resize), mode="bilinear", align_corners=False)
            for t in (train, val, test)
        )
    mean, std = train.mean(dim=(0, 2, 3), keepdim=True), train.std(dim=(0, 2, 3), keepdim=True)
    splits = [
        Split((t - mean) / std.clamp_min(1e-6), torch.as_tensor(lab, dtype=torch.long))
        for t, (_, lab) in zip((train, val, test), parts, strict=True)
    ]
    if max_train is not None:
        splits[0] = splits[0].subset(max_train, seed)
    ds = Dataset(
        key,
        *splits,
        num_classes=10,
        description=description,
        class_names=_CLASS_NAMES.get(key, [str(i) for i in range(10)]),
    )
    if verbose:
        print(f"Dataset: {description}\n  -> {ds}")
    return ds


def load_for_notebook(
    dataset: str = "auto",
    budget: str = "cpu",
    *,
    seed: int = 0,
    resize: int | None = None,
    max_train: int | None = None,
) -> Dataset:
    """The dataset a notebook trains on, never failing for lack of network.

    `"auto"` picks MNIST when its files are on disk (e.g. `MODLEARN_DATA=../shared/data`) at the
    `cpu`/`gpu` budgets and the embedded digits otherwise (always at `smoke`). An explicit name
    that cannot be loaded (missing, truncated or invalid files) falls back to digits, and the
    output says why. `budget` must be one of `modlearn.env.BUDGETS`.
    """
    if budget not in BUDGETS:
        raise ValueError(
            f"budget={budget!r} is not a known budget: expected one of {BUDGETS}; "
            "pass one of them (the notebook's BUDGET parameter)"
        )
    if dataset == "auto":
        dataset = "mnist" if budget != "smoke" and mnist_on_disk() else "digits"
        if dataset == "digits" and budget != "smoke":
            print(
                "MNIST files not found (set MODLEARN_DATA to a folder holding MNIST/raw): "
                "using the embedded scikit-learn digits."
            )
    key = canonical_name(dataset)
    try:
        return load_dataset(key, resize=resize, seed=seed, max_train=max_train)
    except DataUnavailableError as err:
        print(f"Could not load {key!r} ({err}).\nFalling back to the embedded digits dataset.")
        return load_dataset("digits", resize=resize, seed=seed, max_train=max_train)


def _is_int(value: object) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_optional_count(name: str, value: object, none_means: str) -> None:
    if value is not None and not (_is_int(value) and value >= 1):
        raise ValueError(f"{name}={value!r} is not allowed: expected an int >= 1, or None ({none_means})")


def _check_arguments(
    *, root: object, resize: object, seed: object, val_fraction: object, max_train: object
) -> None:
    """`ValueError` naming the first argument of `load_dataset` that has a wrong type or value."""
    _check_optional_count("resize", resize, "None keeps the images' own size")
    _check_optional_count("max_train", max_train, "None keeps the whole training split")
    if not _is_int(seed):
        raise ValueError(f"seed={seed!r} is not allowed: expected an int, e.g. seed=0")
    if (
        isinstance(val_fraction, bool)
        or not isinstance(val_fraction, (int, float))
        or not 0.0 < val_fraction < 0.5
    ):
        raise ValueError(
            f"val_fraction={val_fraction!r} is not allowed: expected a float in "
            "(0, 0.5), e.g. val_fraction=0.1"
        )
    if root is not None and (not isinstance(root, (str, os.PathLike)) or str(root) == ""):
        raise ValueError(
            f"root={root!r} is not allowed: expected a folder as str or pathlib.Path, "
            "or None to use MODLEARN_DATA"
        )


def _to_float_images(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 `(n, h, w)` or `(n, h, w, c)` -> float `(n, c, h, w)` in [0, 1]."""
    t = torch.as_tensor(np.asarray(x))
    if t.ndim == 3:
        t = t.unsqueeze(1)
    elif t.ndim == 4 and t.shape[-1] in (1, 3):
        t = t.permute(0, 3, 1, 2)
    return t.float().div_(255.0).contiguous()


def _three_way_split(
    x: np.ndarray, y: np.ndarray, seed: int, val_fraction: float, test_fraction: float
) -> list[Arrays]:
    n = len(y)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    n_test, n_val = int(round(n * test_fraction)), int(round(n * val_fraction))
    test, val, train = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
    return [(x[i], y[i]) for i in (train, val, test)]


def _load_image_dataset(
    key: str, root_arg: str | Path | None, download: bool, seed: int, val_fraction: float
) -> tuple[list[Arrays], str]:
    """The train/val/test arrays of image dataset `key` from disk (downloaded when asked or missing),
    and a description of where they came from."""
    root, named = resolve_root(root_arg)
    if not download and not root.exists():
        raise DataUnavailableError(
            f"{named} does not exist: create it and put the {key} files there "
            "(torchvision layout), pass download=True to fetch them, or use "
            "the offline dataset 'digits'"
        )
    if download:
        download_files(key, root)
    found = read_from_disk(key, root)
    if found is None and not download:
        download_files(key, root)
        found = read_from_disk(key, root)
    if found is None:
        raise DataUnavailableError(f"{key} files not found under {root}")
    train, test, origin = found
    if train is None:
        parts = _three_way_split(*test, seed, val_fraction=0.1, test_fraction=0.1)
        check_no_empty_split(parts, origin)
        print(
            f"Only the {key} test split is on disk ({len(test[1])} images under {root}); "
            "splitting it 80/10/10 into train/val/test."
        )
        return parts, f"{key} test split only ({len(test[1]):,} real images from {origin}), split 80/10/10"
    parts = [*_three_way_split(*train, seed, val_fraction=val_fraction, test_fraction=0.0)[:2], test]
    check_no_empty_split(parts, origin)
    return parts, f"{key} ({len(train[1]):,} train + {len(test[1]):,} test images from {origin})"
