"""Checkpoint files: weights, optimizer, history and counters, written atomically and verified on load.

A checkpoint is a dict saved with `torch.save` that loads with `torch.load(path, weights_only=True)`;
a SHA-256 of its contents is stored with it, so a changed byte is found before anything is loaded.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from .state import History

CHECKPOINT_FORMAT = "modlearn-checkpoint"


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    history: History,
    epoch: int,
    step: int,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write weights, optimizer state, history, counters and `extra` (what `fit` needs to resume:
    RNG states, run settings, hook states) with a SHA-256 of the contents.

    The write is atomic (a `.tmp` file next to `path`, fsync, rename); the file loads with
    `torch.load(path, weights_only=True)`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "history": history.to_dict(),
        "epoch": epoch,
        "step": step,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        **(extra or {}),
    }
    payload["sha256"] = _digest(payload)
    tmp = _tmp_path(path)
    try:
        with open(tmp, "wb") as file:
            torch.save(payload, file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    if os.name == "posix":
        folder = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def load_checkpoint(
    path: str | Path,
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    history: History | None = None,
) -> tuple[int, int]:
    """Restore a checkpoint into `model` (and `optimizer`, `history`); returns `(epoch, step)`.

    A missing, empty, truncated, corrupt (checksum) or foreign file, or one written for another
    architecture, is a `ValueError` naming the file and the problem.
    """
    saved = read_checkpoint(path)
    apply_checkpoint(path, saved, model, optimizer, history)
    return int(saved["epoch"]), int(saved["step"])


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """The verified contents of a checkpoint written by `save_checkpoint`, on the CPU.

    Removes a stale `.tmp` left next to it by an interrupted write.
    """
    path = Path(path)
    _tmp_path(path).unlink(missing_ok=True)
    if not path.is_file():
        raise ValueError(f"checkpoint {str(path)!r} does not exist or is not a file: check the path")
    if path.stat().st_size == 0:
        raise ValueError(
            f"checkpoint {str(path)!r} is empty (0 bytes): its write was cut off; delete it and train again"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ValueError(
            f"checkpoint {str(path)!r} cannot be read ({type(err).__name__}: {err}): it is "
            "truncated, corrupt or not a weights-only torch file; delete it or use another "
            "copy"
        ) from err
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        found = (
            f"keys {sorted(map(str, payload))[:5]}" if isinstance(payload, dict) else type(payload).__name__
        )
        raise ValueError(
            f"{str(path)!r} is not a modlearn checkpoint (found {found}, expected a "
            f"{CHECKPOINT_FORMAT!r} written by fit or save_checkpoint): a plain state_dict "
            "loads with model.load_state_dict(torch.load(path))"
        )
    if payload.pop("sha256", None) != _digest(payload):
        raise ValueError(
            f"checkpoint {str(path)!r} is corrupt: its contents do not match the SHA-256 "
            "stored with them (changed bytes); delete it or use another copy"
        )
    return payload


def apply_checkpoint(
    path: str | Path,
    saved: Mapping[str, Any],
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None,
    history: History | None,
) -> None:
    """Load the verified contents `saved` of `path` into `model` (and `optimizer`, `history`)."""
    check_architecture(path, model, saved["model"])
    model.load_state_dict(saved["model"])
    if optimizer is not None and saved["optimizer"] is not None:
        optimizer.load_state_dict(saved["optimizer"])
    if history is not None:
        restored = History.from_dict(saved["history"])
        history.steps, history.epochs = restored.steps, restored.epochs


def check_architecture(path: str | Path, model: nn.Module, saved: Mapping[str, torch.Tensor]) -> None:
    """A `ValueError` naming the missing, unexpected and reshaped keys when the state dict `saved`
    (from `path`) was written by another architecture than `model`'s."""
    own = {key: tuple(value.shape) for key, value in model.state_dict().items()}
    theirs = {key: tuple(value.shape) for key, value in saved.items()}
    problems = {
        "missing keys": [key for key in own if key not in theirs],
        "unexpected keys": [key for key in theirs if key not in own],
        "other shapes": [
            f"{key} {theirs[key]} (model: {own[key]})"
            for key in own
            if key in theirs and theirs[key] != own[key]
        ],
    }
    found = [f"{what} {names[:5]}" for what, names in problems.items() if names]
    if found:
        raise ValueError(
            f"checkpoint {str(path)!r} holds another architecture than this model: "
            f"{'; '.join(found)}; load it into the kind of model that wrote it"
        )


def _tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")


def _digest(value: Any) -> str:
    """SHA-256 of a checkpoint's contents (tensors by dtype, shape and bytes; others by repr)."""
    digest = hashlib.sha256()
    _feed(digest, value)
    return digest.hexdigest()


def _feed(digest: Any, value: Any) -> None:
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        digest.update(f"tensor {tensor.dtype} {tuple(tensor.shape)}".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(value, dict):
        digest.update(b"{")
        for key, item in value.items():
            _feed(digest, key)
            _feed(digest, item)
        digest.update(b"}")
    elif isinstance(value, (list, tuple)):
        digest.update(b"[")
        for item in value:
            _feed(digest, item)
        digest.update(b"]")
    else:
        digest.update(f"{type(value).__name__} {value!r};".encode())
