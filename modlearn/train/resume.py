"""Exact resume: what a checkpoint must carry so that `fit(resume=True)` continues the same run.

Besides weights, optimizer and history (`checkpoint`), a run stores its settings (`RESUME_FIELDS` and
the training-set size, compared on resume), the random generators' states after the latest step,
and the states of the objective and hooks that define `state_dict()` / `load_state_dict()`.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from .checkpoint import apply_checkpoint, check_architecture, read_checkpoint
from .config import TrainConfig
from .objectives import Objective
from .state import Hook, TrainState

RESUME_FIELDS = ("batch_size", "lr", "optimizer", "weight_decay", "momentum", "betas", "grad_clip", "seed")


def run_settings(config: TrainConfig, train_size: int) -> dict[str, Any]:
    """What must match for a resume to continue the same run (`resume_strict`)."""
    return {**{name: getattr(config, name) for name in RESUME_FIELDS}, "train_size": train_size}


def stateful_parts(objective: Objective, hooks: Sequence[Hook]) -> dict[str, Any]:
    """The objective and hooks with `state_dict()`/`load_state_dict()`, by name in the checkpoint."""
    candidates = {"objective": objective, **{f"hook{i}.{type(h).__name__}": h for i, h in enumerate(hooks)}}
    return {
        name: part
        for name, part in candidates.items()
        if callable(getattr(part, "state_dict", None)) and callable(getattr(part, "load_state_dict", None))
    }


def open_resume(
    config: TrainConfig, model: nn.Module, run: Mapping[str, Any], parts: Mapping[str, Any]
) -> dict[str, Any]:
    """The checkpoint `resume=True` continues, checked against this run."""
    path = Path(config.checkpoint_path)
    if not path.exists():
        raise ValueError(
            f"resume=True but checkpoint_path={str(path)!r} does not exist: check the path, "
            "or pass resume=False to start a new run"
        )
    saved = read_checkpoint(path)
    check_architecture(path, model, saved["model"])
    differences = [
        f"{name}: checkpoint {saved['run'].get(name)!r}, now {value!r}"
        for name, value in run.items()
        if saved["run"].get(name) != value
    ]
    if set(saved["parts"]) != set(parts):
        differences.append(f"objective/hook states: checkpoint {sorted(saved['parts'])}, now {sorted(parts)}")
    if differences and config.resume_strict:
        raise ValueError(
            f"checkpoint {str(path)!r} was written by a different run: {'; '.join(differences)}. "
            "Resume with the same settings, pass resume_strict=False to resume anyway, or "
            "use a new checkpoint_path"
        )
    saved["parts"] = {name: saved["parts"][name] for name in parts if name in saved["parts"]}
    if saved["run"].get("optimizer") != config.optimizer:
        saved["optimizer"] = None
    return saved


def restore_run(saved: Mapping[str, Any], state: TrainState, steps_per_epoch: int) -> float:
    """Load weights, optimizer, history and position; returns the seconds already spent in the
    current epoch, whose partial row is dropped (the resumed run completes that epoch).

    A non-strict resume trains on with this config's lr, weight_decay, momentum and betas, and with a
    fresh optimizer when the optimizer kind differs."""
    apply_checkpoint(state.config.checkpoint_path, saved, state.model, state.optimizer, state.history)
    for name in ("lr", "weight_decay", "momentum", "betas"):
        if saved["run"].get(name) != getattr(state.config, name):
            for group in state.optimizer.param_groups:
                group[name] = getattr(state.config, name)
    state.step = int(saved["step"])
    state.epoch = state.step // steps_per_epoch
    rows = state.history.epochs
    if state.step % steps_per_epoch and rows and rows[-1]["epoch"] == state.epoch + 1:
        return rows.pop()["seconds"]
    return 0.0


def rng_state(torch_state: torch.Tensor) -> dict[str, Any]:
    """Plain-tensor copies of the torch (CPU and CUDA), Python and NumPy generator states."""
    version, keys, gauss = random.getstate()
    _, np_keys, position, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch_state,
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "python": [version, torch.tensor(keys), gauss],
        "numpy": [torch.from_numpy(np_keys.astype(np.int64)), position, has_gauss, cached],
    }


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore the generator states that `rng_state` copied."""
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys.tolist()), gauss))
    np_keys, position, has_gauss, cached = state["numpy"]
    np.random.set_state(("MT19937", np_keys.numpy().astype(np.uint32), position, has_gauss, cached))
