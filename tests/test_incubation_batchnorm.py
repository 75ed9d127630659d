"""Frozen meta stages keep their BatchNorm statistics while another stage incubates."""

import copy

import torch
import torch.nn as nn

from modlearn import incubation as inc_lib
from modlearn.data import load_dataset
from modlearn.train import Hook


def _stage(fan_in: int, width: int = 16) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(fan_in, width), nn.BatchNorm1d(width), nn.ReLU())


class _Buffers(Hook):
    """The hybrid's buffers at the start and the end of `fit`."""

    def on_fit_start(self, state):
        self.before = {k: v.clone() for k, v in state.model.named_buffers()}

    def on_fit_end(self, state):
        self.after = {k: v.clone() for k, v in state.model.named_buffers()}


def test_incubation_keeps_the_frozen_stages_batchnorm_statistics():
    torch.manual_seed(0)
    data = load_dataset("digits")
    meta = [_stage(64), _stage(16), nn.Linear(16, 10)]
    target = copy.deepcopy(meta[1])
    hook = _Buffers()
    config = inc_lib.IncubationConfig(stages=3, incubation_steps=3)
    inc_lib.incubate_stage(meta, target, 1, data, config, inc_lib.paper_train(batch_size=32), hooks=[hook])
    moved = sorted(k for k in hook.before if not torch.equal(hook.before[k], hook.after[k]))
    assert moved and all(k.startswith("stages.1.") for k in moved), moved


def test_staged_model_train_keeps_frozen_stages_in_eval():
    hybrid = inc_lib.build_hybrid([_stage(4), _stage(16)], _stage(4), 0)
    hybrid.train()
    assert hybrid.training and hybrid.stages[0].training and not hybrid.stages[1].training
    hybrid.eval()
    assert not any(m.training for m in hybrid.modules())
