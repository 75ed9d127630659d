"""Dataset files on disk: where they live, reading and validating them, downloading them.

Every file read is checked (IDX header, size, shapes, counts, labels); a missing or broken one raises
`DataUnavailableError` naming it. Nothing here creates a folder unless a download is asked for.
"""

from __future__ import annotations

import gzip
import math
import os
import socket
import zlib
from pathlib import Path

import numpy as np

Arrays = tuple[np.ndarray, np.ndarray]  # uint8 images (n, h, w[, c]) and int64 labels (n,)
_TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}


class DataUnavailableError(RuntimeError):
    """The files of a dataset are missing, unreadable or invalid, and could not be downloaded.

    A `RuntimeError`, not a `ValueError`: the arguments were fine, the files on disk are not.
    The message names the file (or folder) and the reason; `load_for_notebook` catches it and
    falls back to the embedded digits.
    """


def default_root() -> Path:
    """Where image datasets live: `MODLEARN_DATA`, else `~/.cache/modlearn`."""
    env = os.environ.get("MODLEARN_DATA")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modlearn"


def mnist_on_disk(root: str | Path | None = None) -> bool:
    """True when at least MNIST's test split is under `root` (default `MODLEARN_DATA`/cache)."""
    raw = Path(root or default_root()) / "MNIST" / "raw"
    return _idx_path(raw, "t10k-images-idx3-ubyte") is not None


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


def check_no_empty_split(parts: list[Arrays], origin: str) -> None:
    """`DataUnavailableError` naming `origin` when the train, val or test part holds no sample."""
    empty = [name for name, (_, y) in zip(("train", "val", "test"), parts, strict=True) if len(y) == 0]
    if empty:
        raise DataUnavailableError(
            f"{origin} holds too few images: the {'/'.join(empty)} split would "
            "be empty; use the complete files"
        )


def resolve_root(root: str | Path | None) -> tuple[Path, str]:
    """The data folder and how the user named it, e.g. `MODLEARN_DATA=/data` (for messages)."""
    if root is not None:
        return Path(root).expanduser(), f"root={root}"
    path = default_root()
    return path, (
        f"MODLEARN_DATA={path}" if os.environ.get("MODLEARN_DATA") else f"the default data folder {path}"
    )


def read_from_disk(key: str, root: Path) -> tuple[Arrays | None, Arrays, str] | None:
    """`(train or None, test, origin)` from files under `root`, or None when the test split is missing."""
    if key == "cifar10":
        return _read_cifar(root)
    raw = root / _TORCHVISION_FOLDER[key] / "raw"
    test = read_idx_split(raw, "t10k")
    if test is None:
        return None
    return read_idx_split(raw, "train"), test, str(raw)


def _read_cifar(root: Path) -> tuple[Arrays, Arrays, str] | None:
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


def download_files(key: str, root: Path) -> None:
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
