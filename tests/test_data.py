import gzip

import numpy as np
import pytest
import torch

from modlearn import data


def test_digits_splits_are_disjoint_deterministic_and_shaped():
    a = data.load_dataset("digits", seed=3, verbose=False)
    b = data.load_dataset("digits", seed=3, verbose=False)
    c = data.load_dataset("digits", seed=4, verbose=False)
    assert (len(a.train), len(a.val), len(a.test)) == (1258, 180, 359)
    assert a.train.x.shape[1:] == (1, 8, 8) and a.train.y.dtype == torch.long
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)
    assert not torch.equal(a.train.x, c.train.x)
    rows = [{tuple(r.tolist()) for r in s.x.flatten(1)} for s in (a.train, a.val, a.test)]
    # duplicates inside digits are rare; disjoint index sets show up as (almost) disjoint images
    assert len(rows[0] & rows[2]) <= 2 and len(rows[0] & rows[1]) <= 2
    assert abs(float(a.train.x.mean())) < 1e-4 and abs(float(a.train.x.std()) - 1) < 1e-3


def test_resize_to_28():
    ds = data.load_dataset("digits", resize=28, verbose=False)
    assert ds.input_shape == (1, 28, 28)


def test_unknown_name_and_bad_fraction_raise_value_error():
    with pytest.raises(ValueError, match="digits"):
        data.load_dataset("imagenet")
    with pytest.raises(ValueError, match="val_fraction"):
        data.load_dataset("digits", val_fraction=0.7)


def test_missing_files_without_network_give_a_clear_error(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise OSError("network unreachable")

    monkeypatch.setattr("torchvision.datasets.MNIST.download", no_network)
    with pytest.raises(data.DataUnavailableError, match="MODLEARN_DATA.*digits"):
        data.load_dataset("mnist", root=tmp_path)


def test_notebook_loader_falls_back_to_digits(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MODLEARN_DATA", str(tmp_path))
    monkeypatch.setattr(
        "torchvision.datasets.MNIST.download", lambda *a, **k: (_ for _ in ()).throw(OSError("offline"))
    )
    ds = data.load_for_notebook("mnist", "cpu")
    assert ds.name == "digits"
    assert "Falling back" in capsys.readouterr().out


def _write_idx(path, array, magic):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_test_split_only_is_split_three_ways(tmp_path, capsys):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    _write_idx(raw / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (200, 28, 28)), 2051)
    _write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.arange(200) % 10, 2049)
    ds = data.load_dataset("mnist", root=tmp_path)
    assert (len(ds.train), len(ds.val), len(ds.test)) == (160, 20, 20)
    assert "Only the mnist test split" in capsys.readouterr().out


def test_real_mnist_test_split(mnist_root):
    ds = data.load_dataset("mnist", root=mnist_root, verbose=False)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 10_000
    assert ds.input_shape == (1, 28, 28)


def test_iterate_batches_covers_every_sample_once_and_is_seeded():
    x, y = torch.arange(10).float().unsqueeze(1), torch.arange(10)
    batches = list(data.iterate_batches(x, y, 4, generator=torch.Generator().manual_seed(0)))
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert sorted(torch.cat([b[1] for b in batches]).tolist()) == list(range(10))
    again = list(data.iterate_batches(x, y, 4, generator=torch.Generator().manual_seed(0)))
    assert all(torch.equal(p[1], q[1]) for p, q in zip(batches, again, strict=True))
    with pytest.raises(ValueError):
        next(data.iterate_batches(x, y, 0))


def test_split_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="same first dimension"):
        data.Split(torch.zeros(3, 2), torch.zeros(4))


def test_modular_addition_labels_and_split():
    ds = data.modular_addition(p=7, train_fraction=0.6, seed=1)
    assert len(ds.train) + len(ds.val) + len(ds.test) == 49 and len(ds.train) == 29
    for split in (ds.train, ds.val, ds.test):
        assert torch.equal(split.y, (split.x[:, 0] + split.x[:, 1]) % 7)
    pairs = [{tuple(r) for r in s.x.tolist()} for s in (ds.train, ds.val, ds.test)]
    assert not (pairs[0] & pairs[1]) and not (pairs[0] & pairs[2])
    with pytest.raises(ValueError):
        data.modular_addition(p=1)
