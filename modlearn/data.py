"""Datasets as tensors: embedded digits, torchvision image sets, and on-device batches.

Every loader returns a `Dataset` whose `train`, `val` and `test` are `Split`s of tensors
`x: (n, channels, height, width)` float32 (standardized) and `y: (n,)` int64, made with a
seeded, deterministic split. Introduced in `tutorials/00_tour.ipynb`.
"""

from __future__ import annotations

import gzip
import math
import os
import socket
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .env import BUDGETS

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")
_ALIASES = {
    "fashion_mnist": "fashion-mnist",
    "fmnist": "fashion-mnist",
    "cifar-10": "cifar10",
    "cifar_10": "cifar10",
}
_TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
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


class DataUnavailableError(RuntimeError):
    """The files of a dataset are missing, unreadable or invalid, and could not be downloaded.

    A `RuntimeError`, not a `ValueError`: the arguments were fine, the files on disk are not.
    The message names the file (or folder) and the reason; `load_for_notebook` catches it and
    falls back to the embedded digits.
    """


@dataclass
class Split:
    """One split: `x: (n, ...)` inputs and `y: (n, ...)` targets, on one device."""

    x: torch.Tensor
    y: torch.Tensor

    def __post_init__(self) -> None:
        if self.x.shape[0] != self.y.shape[0]:
            raise ValueError(
                f"x has {self.x.shape[0]} samples but y has {self.y.shape[0]}: "
                "inputs and targets must have the same first dimension"
            )

    def __len__(self) -> int:
        return self.x.shape[0]

    def to(self, device: torch.device | str) -> Split:
        """The same split on `device` (no copy when it is already there)."""
        return Split(self.x.to(device), self.y.to(device))

    def subset(self, n: int, seed: int = 0) -> Split:
        """A seeded random subset of `n` samples (all of them when `n >= len(self)`)."""
        if n >= len(self):
            return self
        idx = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n]
        return Split(self.x[idx.to(self.x.device)], self.y[idx.to(self.y.device)])


@dataclass
class Dataset:
    """Train/val/test splits plus what a model needs to know about them."""

    name: str
    train: Split
    val: Split
    test: Split
    num_classes: int
    description: str
    class_names: list[str] = field(default_factory=list)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, e.g. `(1, 28, 28)`."""
        return tuple(self.train.x.shape[1:])

    def __repr__(self) -> str:
        return (
            f"Dataset({self.name!r}, train={len(self.train)}, val={len(self.val)}, "
            f"test={len(self.test)}, input_shape={self.input_shape}, classes={self.num_classes})"
        )


def default_root() -> Path:
    """Where image datasets live: `MODLEARN_DATA`, else `~/.cache/modlearn`."""
    env = os.environ.get("MODLEARN_DATA")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modlearn"


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


def mnist_on_disk(root: str | Path | None = None) -> bool:
    """True when at least MNIST's test split is under `root` (default `MODLEARN_DATA`/cache)."""
    raw = Path(root or default_root()) / "MNIST" / "raw"
    return _idx_path(raw, "t10k-images-idx3-ubyte") is not None


def iterate_batches(
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    *,
    shuffle: bool = True,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield `(x_batch, y_batch)` slices of tensors already on their device.

    With `shuffle`, one index permutation (from `generator`, on the CPU) reorders the data once
    per pass; batches are then views, so no `DataLoader`, worker or host copy is involved.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size={batch_size} must be >= 1")
    n = x.shape[0]
    if shuffle:
        perm = torch.randperm(n, generator=generator).to(x.device)
        x, y = x[perm], y[perm]
    stop = n - n % batch_size if drop_last else n
    for start in range(0, stop, batch_size):
        yield x[start : start + batch_size], y[start : start + batch_size]


def num_batches(n: int, batch_size: int, drop_last: bool = False) -> int:
    """How many batches `iterate_batches` yields for `n` samples."""
    return n // batch_size if drop_last else -(-n // batch_size)


def modular_addition(p: int = 59, train_fraction: float = 0.8, seed: int = 0) -> Dataset:
    """Every pair `(a, b)` with `0 <= a, b < p`, labelled `(a + b) mod p` (BIMT, clusterability).

    `x: (n, 2)` int64 token pairs, `y: (n,)`. A seeded `train_fraction` of the pairs trains;
    the rest is split evenly into validation and test.
    """
    if p < 2:
        raise ValueError(f"p={p} must be >= 2")
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction={train_fraction} must lie in (0, 1)")
    a, b = torch.meshgrid(torch.arange(p), torch.arange(p), indexing="ij")
    x = torch.stack([a.flatten(), b.flatten()], dim=1)
    y = (x[:, 0] + x[:, 1]) % p
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_train = int(round(train_fraction * len(y)))
    n_val = (len(y) - n_train) // 2
    parts = [perm[:n_train], perm[n_train : n_train + n_val], perm[n_train + n_val :]]
    splits = [Split(x[i], y[i]) for i in parts]
    return Dataset(
        f"modular-addition-{p}",
        *splits,
        num_classes=p,
        description=f"(a + b) mod {p}, {len(parts[0])} of {len(y)} pairs for training",
        class_names=[str(i) for i in range(p)],
    )


def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as uint8 `images: (1797, 8, 8)` in 0..255 and int64 `labels: (1797,)`."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return (bunch.images * (255.0 / 16.0)).astype(np.uint8), bunch.target.astype(np.int64)


def read_idx_split(raw: str | Path, prefix: str) -> tuple[np.ndarray, np.ndarray] | None:
    """One MNIST-layout split from `raw/<prefix>-images-idx3-ubyte[.gz]` and `...-labels-idx1-ubyte[.gz]`.

    Returns uint8 `images: (n, height, width)` and int64 `labels: (n,)`, or None when either file
    is absent. Raises `DataUnavailableError` naming the file when it is unreadable, truncated, not
    uint8 IDX of the right rank, empty, when the counts differ or a label is outside 0..9.
    Reads only; never creates anything.
    """
    raw = Path(raw)
    images = _idx_path(raw, f"{prefix}-images-idx3-ubyte")
    labels = _idx_path(raw, f"{prefix}-labels-idx1-ubyte")
    if images is None or labels is None:
        return None
    x, y = _read_idx(images, ndim=3, kind="images"), _read_idx(labels, ndim=1, kind="labels")
    _check_images_and_labels(x, y, f"{images} with {labels}")
    return x, y.astype(np.int64)


# --------------------------------------------------------------------------- internals


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
) -> list[tuple[np.ndarray, np.ndarray]]:
    n = len(y)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).numpy()
    n_test, n_val = int(round(n * test_fraction)), int(round(n * val_fraction))
    test, val, train = perm[:n_test], perm[n_test : n_test + n_val], perm[n_test + n_val :]
    return [(x[i], y[i]) for i in (train, val, test)]


def _idx_path(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / stem, folder / f"{stem}.gz"):
        if candidate.exists():
            return candidate
    return None


def _read_bytes(path: Path) -> bytes:
    """The content of `path`, gunzipped when it ends in `.gz`."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            return fh.read()
    except (EOFError, zlib.error, OSError) as err:
        raise DataUnavailableError(
            f"{path} cannot be read ({type(err).__name__}: {err}): the file is "
            "truncated or corrupt; replace it with a complete copy"
        ) from err


def _read_idx(path: Path, ndim: int, kind: str) -> np.ndarray:
    """uint8 array of rank `ndim` from an IDX file (big-endian header, then uint8 data), size checked."""
    raw = _read_bytes(path)
    header, magic_expected = 4 + 4 * ndim, 0x0800 + ndim
    magic = int.from_bytes(raw[:4], "big")
    if len(raw) < header or magic != magic_expected:
        raise DataUnavailableError(
            f"{path} is not uint8 {kind} in IDX format: found magic number {magic} in a {len(raw)}-byte "
            f"file, expected {magic_expected} ({ndim} dimension(s)); replace it with the original file"
        )
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    size = header + math.prod(dims)
    if len(raw) != size:
        raise DataUnavailableError(
            f"{path}: its header announces {kind} of shape {tuple(dims)} ({size} bytes) but the file "
            f"holds {len(raw)} bytes: it is truncated or corrupt; replace it with a complete copy"
        )
    if size == header:
        raise DataUnavailableError(
            f"{path} holds no {kind} (shape {tuple(dims)}); replace it with the original file"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims).copy()


def _check_images_and_labels(
    images: np.ndarray, labels: np.ndarray, source: str, num_classes: int = 10
) -> None:
    """`DataUnavailableError` naming `source` unless counts match, there are samples and labels fit."""
    if len(images) != len(labels):
        raise DataUnavailableError(
            f"{source}: {len(images)} images but {len(labels)} labels; the "
            "counts must match: replace the files with a matching pair"
        )
    if len(labels) == 0:
        raise DataUnavailableError(f"{source}: no samples; replace the files with the original ones")
    low, high = int(labels.min()), int(labels.max())
    if low < 0 or high >= num_classes:
        raise DataUnavailableError(
            f"{source}: labels span {low}..{high} but the classes are "
            f"0..{num_classes - 1}: these are not this dataset's labels; "
            "replace the files with the original ones"
        )


def _check_no_empty_split(parts: list[tuple[np.ndarray, np.ndarray]], origin: str) -> None:
    empty = [name for name, (_, y) in zip(("train", "val", "test"), parts, strict=True) if len(y) == 0]
    if empty:
        raise DataUnavailableError(
            f"{origin} holds too few images: the {'/'.join(empty)} split would "
            "be empty; use the complete files"
        )


def _resolve_root(root: str | Path | None) -> tuple[Path, str]:
    """The data folder and how the user named it, e.g. `MODLEARN_DATA=/data` (for messages)."""
    if root is not None:
        return Path(root).expanduser(), f"root={root}"
    path = default_root()
    return path, (
        f"MODLEARN_DATA={path}" if os.environ.get("MODLEARN_DATA") else f"the default data folder {path}"
    )


def _load_image_dataset(
    key: str, root_arg: str | Path | None, download: bool, seed: int, val_fraction: float
):
    root, named = _resolve_root(root_arg)
    if not download and not root.exists():
        raise DataUnavailableError(
            f"{named} does not exist: create it and put the {key} files there "
            "(torchvision layout), pass download=True to fetch them, or use "
            "the offline dataset 'digits'"
        )
    if download:
        _download(key, root)
    found = _read_from_disk(key, root)
    if found is None and not download:
        _download(key, root)
        found = _read_from_disk(key, root)
    if found is None:
        raise DataUnavailableError(f"{key} files not found under {root}")
    train, test, origin = found
    if train is None:
        parts = _three_way_split(*test, seed, val_fraction=0.1, test_fraction=0.1)
        _check_no_empty_split(parts, origin)
        print(
            f"Only the {key} test split is on disk ({len(test[1])} images under {root}); "
            "splitting it 80/10/10 into train/val/test."
        )
        return parts, f"{key} test split only ({len(test[1]):,} real images from {origin}), split 80/10/10"
    parts = [*_three_way_split(*train, seed, val_fraction=val_fraction, test_fraction=0.0)[:2], test]
    _check_no_empty_split(parts, origin)
    return parts, f"{key} ({len(train[1]):,} train + {len(test[1]):,} test images from {origin})"


def _read_from_disk(key: str, root: Path):
    """`(train or None, test, origin)` from files under `root`, or None when the test split is missing."""
    if key == "cifar10":
        return _read_cifar(root)
    raw = root / _TORCHVISION_FOLDER[key] / "raw"
    test = read_idx_split(raw, "t10k")
    if test is None:
        return None
    return read_idx_split(raw, "train"), test, str(raw)


def _read_cifar(root: Path):
    """Both CIFAR-10 splits through torchvision, validated; None when their folder is absent."""
    folder = root / "cifar-10-batches-py"
    if not folder.is_dir():
        return None
    try:
        from torchvision.datasets import CIFAR10

        sets = [CIFAR10(str(root), train=flag, download=False) for flag in (True, False)]
    except Exception as err:  # checksum, pickle and I/O failures all mean the folder is unusable
        raise DataUnavailableError(
            f"{folder} cannot be read by torchvision ({type(err).__name__}: "
            f"{err}); replace it with the original CIFAR-10 files"
        ) from err
    splits = []
    for flag, s in zip(("train", "test"), sets, strict=True):
        x, y = np.asarray(s.data), np.asarray(s.targets, dtype=np.int64)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
            raise DataUnavailableError(
                f"{folder} ({flag}): images of shape {x.shape} and type {x.dtype}, "
                "expected uint8 (n, 32, 32, 3); replace the folder"
            )
        _check_images_and_labels(x, y, f"{folder} ({flag})")
        splits.append((x, y))
    return splits[0], splits[1], str(folder)


def _download(key: str, root: Path) -> None:
    """Fetch `key` with torchvision into `root`; a clear error when that is impossible."""
    help_text = (
        f"could not download {key} into {root}. Put the files there (torchvision layout) and "
        "set MODLEARN_DATA to that folder, or use the offline dataset 'digits'"
    )
    try:
        import torchvision.datasets as tvd
    except Exception as err:
        raise DataUnavailableError(f"torchvision is not importable ({err}); {help_text}") from err
    cls = {"mnist": tvd.MNIST, "fashion-mnist": tvd.FashionMNIST, "cifar10": tvd.CIFAR10}[key]
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(15)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as err:  # any network or disk failure means the same thing to a learner
        raise DataUnavailableError(f"{help_text} ({type(err).__name__}: {err})") from err
    finally:
        socket.setdefaulttimeout(previous)


# --------------------------------------------------------------------------- BIMT toy tasks (notebook 06)


def _independence(x: torch.Tensor) -> torch.Tensor:
    return torch.stack([(x[:, 0] + x[:, 2]) ** 3, x[:, 1] ** 2 + torch.sin(math.pi * x[:, 3])], dim=1)


def _feature_sharing(x: torch.Tensor) -> torch.Tensor:
    return torch.cumsum(x**2, dim=1)


def _compositionality(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt((x[:, 0] - x[:, 1]) ** 2 + (x[:, 2] - x[:, 3]) ** 2).unsqueeze(1)


SYMBOLIC_TASKS = {
    "independence": (4, _independence, ["(x1+x3)^3", "x2^2+sin(pi x4)"]),
    "feature_sharing": (3, _feature_sharing, ["x1^2", "x1^2+x2^2", "x1^2+x2^2+x3^2"]),
    "compositionality": (4, _compositionality, ["sqrt((x1-x2)^2+(x3-x4)^2)"]),
}


def symbolic_task(name: str, n_train: int = 100, n_test: int = 100, seed: int = 0) -> Dataset:
    """BIMT's symbolic formulas on inputs drawn from U[-1, 1]^d (Liu, Gan & Tegmark 2023).

    - `independence`: `y = ((x1 + x3)^3, x2^2 + sin(pi x4))`, d = 4, two unrelated outputs;
    - `feature_sharing`: `y = (x1^2, x1^2 + x2^2, x1^2 + x2^2 + x3^2)`, d = 3;
    - `compositionality`: `y = sqrt((x1 - x2)^2 + (x3 - x4)^2)`, d = 4.

    `x: (n, d)` float, `y: (n, outputs)` float; validation and test have `n_test` points each.
    `num_classes` holds the number of outputs and `class_names` their formulas.
    """
    if name not in SYMBOLIC_TASKS:
        raise ValueError(f"unknown symbolic task {name!r}: choose one of {tuple(SYMBOLIC_TASKS)}")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"n_train={n_train} and n_test={n_test} must be >= 1")
    dim, formula, names = SYMBOLIC_TASKS[name]
    gen = torch.Generator().manual_seed(seed)
    splits = []
    for n in (n_train, n_test, n_test):
        x = torch.rand(n, dim, generator=gen) * 2 - 1
        splits.append(Split(x, formula(x)))
    return Dataset(
        name,
        *splits,
        num_classes=len(names),
        description=f"symbolic task {name}: " + ", ".join(names) + f" on U[-1,1]^{dim}",
        class_names=names,
    )


def two_moons(n: int = 200, noise: float = 0.1, seed: int = 0) -> Dataset:
    """scikit-learn's two interleaved half-moons: `n` training points, `n // 2` validation and test.

    `x: (n, 2)` float, `y: (n,)` int64 in {0, 1}.
    """
    from sklearn.datasets import make_moons

    if n < 2 or noise < 0:
        raise ValueError(f"n={n} must be >= 2 and noise={noise} >= 0")
    splits = []
    for k, size in enumerate((n, max(1, n // 2), max(1, n // 2))):
        x, y = make_moons(size, noise=noise, random_state=seed * 3 + k)
        splits.append(Split(torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.long)))
    return Dataset(
        "two-moons",
        *splits,
        num_classes=2,
        description=f"two moons, {n} training points, noise {noise}",
        class_names=["0", "1"],
    )
