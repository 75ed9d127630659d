"""Broken, partial and missing data files: clear errors from `load_dataset`, a digits fallback from
`load_for_notebook`, nothing created on disk, and the train/val/test split when a train split exists."""

import gzip
import math
import re

import numpy as np
import pytest
import torch

from modlearn import data

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """An IDX file's bytes: big-endian magic and dimensions, then the uint8 values."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_file(path, payload: bytes, gz: bool) -> str:
    """Write `payload` to `path` (gzip-compressed under `path.gz` when `gz`); return the file name."""
    target = path.with_name(path.name + ".gz") if gz else path
    target.write_bytes(gzip.compress(payload) if gz else payload)
    return target.name


def write_split(raw, prefix: str, images: np.ndarray, labels: np.ndarray, gz: bool = True) -> None:
    raw.mkdir(parents=True, exist_ok=True)
    write_file(raw / f"{prefix}-images-idx3-ubyte", idx_bytes(images, IMAGES_MAGIC), gz)
    write_file(raw / f"{prefix}-labels-idx1-ubyte", idx_bytes(labels, LABELS_MAGIC), gz)


def fake_images(n: int, size: int = 28, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size), dtype=np.uint8)


def labels_of(n: int) -> np.ndarray:
    return (np.arange(n) % 10).astype(np.uint8)


def good_test_split(raw, gz: bool = True) -> None:
    write_split(raw, "t10k", fake_images(100), labels_of(100), gz)


def truncated_idx(raw):
    good_test_split(raw, gz=False)
    path = raw / "t10k-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:1016])
    return path.name, "truncated"


def truncated_gz(raw):
    good_test_split(raw)
    path = raw / "t10k-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:500])
    return path.name, "truncated or corrupt"


def garbage_plain(raw):
    good_test_split(raw)
    (raw / "t10k-labels-idx1-ubyte.gz").unlink()
    name = write_file(raw / "t10k-labels-idx1-ubyte", bytes(range(256)) * 4, gz=False)
    return name, "magic number"


def garbage_gz(raw):
    good_test_split(raw)
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(b"\xe7\xd9\x00\x72" * 300)
    return "t10k-images-idx3-ubyte.gz", "cannot be read"


def more_labels_than_images(raw):
    write_split(raw, "t10k", fake_images(100), labels_of(300))
    return "t10k-images-idx3-ubyte.gz", "100 images but 300 labels"


def more_images_than_labels(raw):
    write_split(raw, "t10k", fake_images(300), labels_of(100))
    return "t10k-labels-idx1-ubyte.gz", "300 images but 100 labels"


def labels_holding_images(raw):
    good_test_split(raw)
    write_file(raw / "t10k-labels-idx1-ubyte", idx_bytes(fake_images(160), IMAGES_MAGIC), gz=True)
    return "t10k-labels-idx1-ubyte.gz", f"magic number {IMAGES_MAGIC}"


def labels_out_of_range(raw):
    write_split(raw, "t10k", fake_images(100), np.arange(100, dtype=np.uint8) * 2)
    return "t10k-labels-idx1-ubyte.gz", r"labels span 0\.\.198"


def empty_files(raw):
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte.gz").write_bytes(b"")
    (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")
    return "t10k-images-idx3-ubyte.gz", "0-byte file"


def zero_samples(raw):
    write_split(raw, "t10k", np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.uint8))
    return "t10k-images-idx3-ubyte.gz", "holds no images"


def broken_train_split(raw):
    good_test_split(raw)
    write_split(raw, "train", fake_images(50), labels_of(50))
    path = raw / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-10]))
    return path.name, "truncated"


FAULTS = [
    truncated_idx,
    truncated_gz,
    garbage_plain,
    garbage_gz,
    more_labels_than_images,
    more_images_than_labels,
    labels_holding_images,
    labels_out_of_range,
    empty_files,
    zero_samples,
    broken_train_split,
]


@pytest.fixture
def offline(monkeypatch):
    """torchvision downloads fail at once (after creating whatever folders they create)."""

    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive", no_network)
    monkeypatch.setattr("torchvision.datasets.cifar.download_and_extract_archive", no_network)


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__)
def test_broken_files_raise_an_error_naming_the_file(fault, tmp_path, offline):
    name, reason = fault(tmp_path / "MNIST" / "raw")
    with pytest.raises(data.DataUnavailableError, match=re.escape(name)) as err:
        data.load_dataset("mnist", root=tmp_path, verbose=False)
    assert re.search(reason, str(err.value)), str(err.value)


@pytest.mark.parametrize("fault", FAULTS, ids=lambda f: f.__name__)
def test_notebook_loader_falls_back_to_digits_and_says_why(fault, tmp_path, monkeypatch, capsys, offline):
    name, reason = fault(tmp_path / "MNIST" / "raw")
    monkeypatch.setenv("MODLEARN_DATA", str(tmp_path))
    for dataset in ("mnist", "auto"):
        ds = data.load_for_notebook(dataset, "cpu")
        out = capsys.readouterr().out
        assert ds.name == "digits" and len(ds.train) > 1000 and len(ds.val) and len(ds.test)
        assert "Falling back" in out and name in out and re.search(reason, out), out


def test_missing_root_is_reported_and_never_created(tmp_path, monkeypatch, capsys, offline):
    missing = tmp_path / "nowhere"
    for key in ("mnist", "fashion-mnist", "cifar10"):
        with pytest.raises(data.DataUnavailableError, match=f"root={re.escape(str(missing))} does not exist"):
            data.load_dataset(key, root=missing, verbose=False)
    monkeypatch.setenv("MODLEARN_DATA", str(missing))
    with pytest.raises(data.DataUnavailableError, match=f"MODLEARN_DATA={re.escape(str(missing))} does not"):
        data.load_dataset("mnist", verbose=False)
    assert data.load_for_notebook("mnist", "cpu").name == "digits"
    assert f"MODLEARN_DATA={missing} does not exist" in capsys.readouterr().out
    assert not data.mnist_on_disk() and data.read_idx_split(missing / "MNIST" / "raw", "t10k") is None
    assert not missing.exists()


def test_broken_cifar_folder_is_reported(tmp_path, offline):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "data_batch_1").write_bytes(b"not a pickle")
    with pytest.raises(data.DataUnavailableError, match=re.escape(str(folder))):
        data.load_dataset("cifar10", root=tmp_path, verbose=False)


@pytest.mark.parametrize(
    "images, labels, reason",
    [
        (np.zeros((20, 32, 32, 3), np.uint8), np.arange(20) % 10, None),
        (np.zeros((20, 32, 32, 3), np.uint8), np.arange(20), r"labels span 0\.\.19"),
        (np.zeros((20, 3, 32, 32), np.uint8), np.arange(20) % 10, r"shape \(20, 3, 32, 32\)"),
        (np.zeros((20, 32, 32, 3), np.uint8), np.arange(25) % 10, "20 images but 25 labels"),
    ],
)
def test_cifar_arrays_from_torchvision_are_validated(images, labels, reason, tmp_path, monkeypatch):
    class FakeCIFAR10:
        def __init__(self, root, train, download):
            self.data, self.targets = images, list(labels)

    monkeypatch.setattr("torchvision.datasets.CIFAR10", FakeCIFAR10)
    (tmp_path / "cifar-10-batches-py").mkdir()
    if reason is None:
        ds = data.load_dataset("cifar10", root=tmp_path, verbose=False)
        assert ds.input_shape == (3, 32, 32) and len(ds.train) + len(ds.val) == 20
        return
    with pytest.raises(data.DataUnavailableError, match=reason):
        data.load_dataset("cifar10", root=tmp_path, verbose=False)


def stamped(images: np.ndarray, tag: int) -> np.ndarray:
    """Copies of `images` whose first pixels spell (tag, index), so every image is unique."""
    out = images.copy()
    index = np.arange(len(out))
    out[:, 0, 0], out[:, 0, 1], out[:, 0, 2] = tag, index % 256, index // 256
    return out


def row_keys(split: data.Split) -> list[bytes]:
    return [row.numpy().tobytes() for row in split.x.flatten(1)]


@pytest.mark.parametrize("val_fraction", [0.1, 0.25])
def test_train_and_test_files_give_train_val_from_train_and_the_whole_test(tmp_path, val_fraction):
    images, labels = data.digits_arrays()
    raw = tmp_path / "MNIST" / "raw"
    write_split(raw, "train", stamped(images[:1500], 1), labels[:1500])
    write_split(raw, "t10k", stamped(images[1500:], 2), labels[1500:], gz=False)
    ds = data.load_dataset("mnist", root=tmp_path, seed=1, val_fraction=val_fraction, verbose=False)
    assert len(ds.val) == round(1500 * val_fraction) and len(ds.train) + len(ds.val) == 1500
    assert len(ds.test) == len(images) - 1500
    train, val, test = (row_keys(s) for s in (ds.train, ds.val, ds.test))
    assert len(set(train + val)) == 1500 and len(set(test)) == len(test)
    assert not set(train + val) & set(test)
    assert torch.equal(torch.sort(ds.test.y).values, torch.sort(torch.as_tensor(labels[1500:])).values)
    assert sorted(torch.cat([ds.train.y, ds.val.y]).tolist()) == sorted(labels[:1500].tolist())


def test_train_images_missing_falls_back_to_splitting_the_test_split(tmp_path, capsys):
    raw = tmp_path / "MNIST" / "raw"
    good_test_split(raw)
    write_file(raw / "train-labels-idx1-ubyte", idx_bytes(labels_of(300), LABELS_MAGIC), gz=True)
    ds = data.load_dataset("mnist", root=tmp_path, verbose=False)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (80, 10, 10)
    assert "Only the mnist test split" in capsys.readouterr().out


def test_too_few_images_for_three_splits_is_an_error(tmp_path):
    write_split(tmp_path / "MNIST" / "raw", "t10k", fake_images(4), labels_of(4))
    with pytest.raises(data.DataUnavailableError, match="too few images"):
        data.load_dataset("mnist", root=tmp_path, verbose=False)


BAD_LOAD_DATASET = [
    ({"resize": 0}, "resize"),
    ({"resize": -1}, "resize"),
    ({"resize": 2.5}, "resize"),
    ({"resize": "28"}, "resize"),
    ({"resize": True}, "resize"),
    ({"max_train": -5}, "max_train"),
    ({"max_train": 0}, "max_train"),
    ({"max_train": 1.5}, "max_train"),
    ({"max_train": "10"}, "max_train"),
    ({"seed": 1.5}, "seed"),
    ({"seed": "0"}, "seed"),
    ({"seed": None}, "seed"),
    ({"val_fraction": 0}, "val_fraction"),
    ({"val_fraction": 0.5}, "val_fraction"),
    ({"val_fraction": 0.7}, "val_fraction"),
    ({"val_fraction": -0.1}, "val_fraction"),
    ({"val_fraction": "0.1"}, "val_fraction"),
    ({"val_fraction": math.nan}, "val_fraction"),
    ({"val_fraction": True}, "val_fraction"),
    ({"root": 5}, "root"),
    ({"root": ""}, "root"),
    ({"name": "imagenet"}, "dataset"),
]


@pytest.mark.parametrize("kwargs, argument", BAD_LOAD_DATASET, ids=lambda v: repr(v))
def test_load_dataset_rejects_bad_arguments(kwargs, argument, tmp_path):
    kwargs = {"name": "mnist", "root": tmp_path / "absent", **kwargs}
    with pytest.raises(ValueError, match=rf"\b{argument}\b") as err:
        data.load_dataset(**kwargs, verbose=False)
    assert "expected" in str(err.value) or "choose one of" in str(err.value)
    assert not (tmp_path / "absent").exists()


BAD_NOTEBOOK = [
    ({"budget": "fast"}, "budget"),
    ({"budget": "CPU"}, "budget"),
    ({"budget": None}, "budget"),
    ({"dataset": "mnist", "budget": "fast"}, "budget"),
    ({"max_train": -5}, "max_train"),
    ({"max_train": 0}, "max_train"),
    ({"resize": 0}, "resize"),
    ({"seed": "x"}, "seed"),
    ({"dataset": "imagenet"}, "dataset"),
]


@pytest.mark.parametrize("kwargs, argument", BAD_NOTEBOOK, ids=lambda v: repr(v))
def test_load_for_notebook_rejects_bad_arguments(kwargs, argument, tmp_path, monkeypatch):
    monkeypatch.setenv("MODLEARN_DATA", str(tmp_path))
    with pytest.raises(ValueError, match=rf"\b{argument}\b") as err:
        data.load_for_notebook(**kwargs)
    if argument == "budget":
        assert all(b in str(err.value) for b in ("smoke", "cpu", "gpu"))
