"""A training movie of BIMT: snapshots of the network every few steps."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn

from ..train import Hook, TrainState
from .model import BioMLP


class Snapshots(Hook):
    """Copies of the model's state every `every` steps (and at start and end): a training movie."""

    def __init__(self, every: int = 100) -> None:
        if every < 1:
            raise ValueError(f"snapshot every={every} must be >= 1")
        self.every = every
        self.steps: list[int] = []
        self.states: list[dict[str, torch.Tensor]] = []
        self._model: nn.Module | None = None

    def _take(self, state: TrainState) -> None:
        if self.steps and self.steps[-1] == state.step:
            return
        self._model = state.model
        self.steps.append(state.step)
        self.states.append(
            {
                k: v.detach().float().cpu().clone() if v.is_floating_point() else v.cpu().clone()
                for k, v in state.model.state_dict().items()
            }
        )

    def on_fit_start(self, state: TrainState) -> None:
        self._take(state)

    def on_step_end(self, state: TrainState) -> None:
        if state.step % self.every == 0:
            self._take(state)

    def on_fit_end(self, state: TrainState) -> None:
        self._take(state)

    def __len__(self) -> int:
        return len(self.steps)

    def model_at(self, index: int) -> BioMLP:
        """A CPU copy of the model as it was at snapshot `index`."""
        if self._model is None:
            raise ValueError("no snapshot taken yet: pass this hook to train_bimt / fit first")
        model = copy.deepcopy(self._model).cpu()
        model.load_state_dict(self.states[index])
        return model
