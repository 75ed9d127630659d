"""Checkpoint files (modlearn.train): verified on load, atomic on save, loadable with weights_only."""

import pytest
import torch

import modlearn as ml
from modlearn import train
from modlearn.data import Split
from modlearn.train import TrainConfig, fit, load_checkpoint


def _mlp(hidden=(16,)):
    torch.manual_seed(0)
    return ml.make_model("mlp", (1, 8, 8), hidden=hidden)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """A checkpoint written by `fit` and the bytes of its file."""
    ds = ml.load_dataset("digits", verbose=False)
    path = tmp_path_factory.mktemp("ckpt") / "run.pt"
    fit(
        _mlp(),
        Split(ds.train.x[:128], ds.train.y[:128]),
        TrainConfig(epochs=1, batch_size=64, progress=False, checkpoint_path=str(path)),
    )
    return path, path.read_bytes()


def _damaged(tmp_path, content):
    path = tmp_path / "damaged.pt"
    path.write_bytes(content)
    return path


def test_weights_only_load_and_round_trip(written):
    path, _ = written
    state = torch.load(path, weights_only=True)
    assert state["format"] == train.CHECKPOINT_FORMAT and state["step"] == 2 and len(state["sha256"]) == 64
    assert isinstance(state["rng"]["torch"], torch.Tensor)
    model = _mlp()
    assert load_checkpoint(path, model) == (1, 2)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state["model"].items())


@pytest.mark.parametrize(
    "damage, problem",
    [
        (lambda content: content[: len(content) // 2], "cannot be read"),
        (lambda content: b"", "empty"),
    ],
)
def test_truncated_and_empty_files_are_value_errors_naming_the_file(written, tmp_path, damage, problem):
    path = _damaged(tmp_path, damage(written[1]))
    with pytest.raises(ValueError, match=rf"damaged\.pt.*{problem}"):
        load_checkpoint(path, _mlp())


def test_flipped_bytes_in_the_weights_are_caught_by_the_checksum(written, tmp_path):
    path, content = written
    weight = torch.load(path, weights_only=True)["model"]["head.weight"]
    at = content.find(weight.numpy().tobytes()[:32])
    assert at > 0
    flipped = bytearray(content)
    flipped[at + 5] ^= 0xFF
    with pytest.raises(ValueError, match=r"damaged\.pt.*corrupt.*SHA-256"):
        load_checkpoint(_damaged(tmp_path, bytes(flipped)), _mlp())


def test_a_plain_state_dict_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save(_mlp().state_dict(), path)
    with pytest.raises(ValueError, match=r"weights\.pt.*not a modlearn checkpoint.*load_state_dict"):
        load_checkpoint(path, _mlp())


def test_another_architecture_names_the_keys(written):
    with pytest.raises(ValueError, match=r"run\.pt.*another architecture.*other shapes.*\(32, 64\)"):
        load_checkpoint(written[0], _mlp(hidden=(32,)))
    with pytest.raises(ValueError, match=r"run\.pt.*another architecture.*missing keys"):
        load_checkpoint(written[0], _mlp(hidden=(16, 16)))


def test_a_stale_tmp_file_is_removed_on_load_and_on_save(written, tmp_path):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(written[1])
    stale = tmp_path / "ckpt.pt.tmp"
    stale.write_bytes(b"half a write")
    load_checkpoint(path, _mlp())
    assert not stale.exists()
    stale.write_bytes(b"half a write")
    train.save_checkpoint(path, _mlp(), None, train.History(), 0, 0)
    assert not stale.exists() and load_checkpoint(path, _mlp()) == (0, 0)


def test_a_failed_write_keeps_the_previous_checkpoint(written, tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    path.write_bytes(written[1])

    def crash(payload, file):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        train.save_checkpoint(path, _mlp(), None, train.History(), 0, 0)
    assert path.read_bytes() == written[1] and not (tmp_path / "ckpt.pt.tmp").exists()
