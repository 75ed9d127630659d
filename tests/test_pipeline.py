"""Pipelined DGL (`modlearn.local.pipeline`): module k on `torchrun` rank k gives the single-process DGL."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

from modlearn.data import load_dataset
from modlearn.local import (
    TIMED_MODES,
    LocalConfig,
    Timeline,
    WatchModules,
    launch_ranks,
    modules_at_work_together,
    plot_timelines,
    record_timelines,
    train_dgl_pipelined,
    train_local,
)
from modlearn.models import make_model
from modlearn.train import TrainConfig

RUN = ROOT / "tests" / "pipeline_run.py"


def run_dgl(out, *flags: str, launcher: tuple[str, ...] = ()) -> tuple[dict, str]:
    """`pipeline_run.py` in fresh processes with 1 OpenMP thread each; the trained weights and the output."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, *launcher, str(RUN), str(out), *flags],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return torch.load(out / "weights.pt", weights_only=True), done.stdout


def test_two_pipelined_ranks_give_the_single_process_dgl_bit_for_bit(tmp_path):
    single, said = run_dgl(tmp_path / "single", "--steps", "40")
    torchrun = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    pipelined, said_pipelined = run_dgl(
        tmp_path / "pipelined", "--steps", "40", "--pipelined", launcher=torchrun
    )
    assert "steps 40 histories ['train']" in said
    assert "steps 80 histories ['module 1', 'module 2']" in said_pipelined  # each module's 40 steps
    assert single.keys() == pipelined.keys()
    assert all(torch.equal(single[k], pipelined[k]) for k in single), {
        k: (single[k] - pipelined[k]).abs().max().item() for k in single
    }


def test_pipelining_needs_one_rank_per_module():
    data = load_dataset("digits", verbose=False)
    model = make_model("mlp", data.input_shape, data.num_classes, hidden=(16, 16))
    with pytest.raises(ValueError, match="2 modules need as many ranks, found 1"):
        train_dgl_pipelined(model, data, LocalConfig(), TrainConfig(max_steps=1, epochs=None))


def test_modules_at_work_together_is_the_overlap_over_the_whole_span():
    segments = [(0, "forward", 0.0, 2.0), (1, "forward", 1.0, 3.0), (0, "backward", 3.0, 4.0)]
    assert modules_at_work_together(segments) == pytest.approx(1 / 4)
    assert modules_at_work_together([(0, "forward", 0.0, 1.0), (1, "forward", 1.0, 2.0)]) == 0.0


def _phase_order(timeline: Timeline) -> list[tuple[int, str]]:
    """The (module, phase) marks of the run's fourth step, without waits."""
    work = [(m, p) for _, m, p in timeline.marks if p != "wait"]
    fourth = [i for i, mark in enumerate(work) if mark == (0, "forward")][3]
    return work[fourth : fourth + 4]


def test_the_marks_show_backward_locking_in_e2e_and_none_in_dgl():
    data = load_dataset("digits", verbose=False)
    train = TrainConfig(max_steps=6, epochs=None, seed=0, progress=False)
    orders = {}
    for mode in ("e2e", "dgl"):
        torch.manual_seed(0)
        model = make_model("mlp", data.input_shape, data.num_classes, hidden=(16, 16, 16))
        timeline = Timeline()
        watch = WatchModules([(0, 2), (2, 3)], timeline)
        run = train_local(model, data, LocalConfig(mode=mode, num_modules=2), train, hooks=[watch])
        orders[mode] = _phase_order(timeline)
        assert timeline.marks[-1][2] == "wait" and not watch.handles
        assert not run.model.blocks[0]._forward_pre_hooks, "the watch left a hook on the trained model"
    assert orders["e2e"] == [(0, "forward"), (1, "forward"), (1, "backward"), (0, "backward")]
    assert orders["dgl"] == [(0, "forward"), (0, "backward"), (1, "forward"), (1, "backward")]


def test_record_timelines_pipelines_dgl_with_the_same_weights(tmp_path):
    data = load_dataset("digits", verbose=False)
    times = record_timelines(data, hidden=(64, 64, 64), steps=20, train=TrainConfig(batch_size=32, seed=0))
    assert times.max_weight_difference == 0.0
    assert [len(times.step_starts(mode)) >= 20 for mode in TIMED_MODES] == [True] * 3
    assert len(times.timelines["pipelined"]) == 2
    assert times.together("pipelined") > 0 and times.together("dgl") == times.together("e2e") == 0
    assert times.seconds_per_step("pipelined") > 0
    figure = plot_timelines(times, first_step=5, num_steps=3)
    assert len(figure.axes) == 3


def test_a_failing_rank_raises_with_its_output_and_stops_the_others():
    command = [
        sys.executable,
        "-c",
        "import os, sys, time\nif os.environ['RANK'] == '1': sys.exit('rank 1 broke')\ntime.sleep(60)",
    ]
    with pytest.raises(RuntimeError, match=r"(?s)rank 1 \(exit 1\).*rank 1 broke"):
        launch_ranks(2, command, timeout_s=30)
