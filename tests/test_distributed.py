"""`fit` under `torchrun` (2 ranks, gloo): the same training as one process with the same global batch
and seed, metrics averaged, the checkpoint from rank 0 only, and a resume in another world size."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from conftest import ROOT

from modlearn.train import distributed

RUN = ROOT / "tests" / "distributed_fit_run.py"
TORCHRUN = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
# 2 ranks sum their shares' gradients in another order than one process sums the batch: float rounding
ATOL = 1e-5


def run_fit(out, *flags: str, ranks: int = 1) -> dict:
    """`distributed_fit_run.py` in fresh processes (1 OpenMP thread each, as torchrun sets); rank 0's
    weights."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    launcher = TORCHRUN if ranks == 2 else ()
    cmd = [sys.executable, *launcher, str(RUN), str(out), *flags]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return torch.load(out / "weights.pt", weights_only=True)


def max_difference(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    return out, run_fit(out, "--steps", "60")


def test_two_ranks_train_the_weights_one_process_trains(single, tmp_path):
    single_out, single_weights = single
    weights = run_fit(tmp_path, "--steps", "60", "--checkpoint", str(tmp_path / "ck.pt"), ranks=2)
    assert max_difference(weights, single_weights) < ATOL
    losses = [json.loads((tmp_path / f"losses-{r}.json").read_text()) for r in (0, 1)]
    assert losses[0] == losses[1], "every rank must hold the same (averaged) step metrics"
    alone = json.loads((single_out / "losses-0.json").read_text())
    assert len(losses[0]) == len(alone) == 60
    assert max(abs(a - b) for a, b in zip(losses[0], alone, strict=True)) < ATOL
    writers = (tmp_path / "checkpoint-writers.txt").read_text().split()
    assert writers and set(writers) == {"0"}, f"checkpoints written by ranks {writers}"


def test_a_two_rank_checkpoint_resumes_in_one_process(single, tmp_path):
    _, single_weights = single
    ck = str(tmp_path / "ck.pt")
    run_fit(tmp_path, "--steps", "30", "--checkpoint", ck, ranks=2)
    resumed = run_fit(tmp_path, "--steps", "60", "--checkpoint", ck, "--resume")
    assert max_difference(resumed, single_weights) < ATOL


def test_shares_cover_the_batch_and_weigh_by_size():
    x, y = torch.arange(11.0)[:, None], torch.arange(11)
    shares = [distributed.shard((x, y), distributed.Ranks(r, 3)) for r in range(3)]
    assert torch.equal(torch.cat([xs for (xs, _), _ in shares]), x)
    assert [len(ys) for (_, ys), _ in shares] == [4, 4, 3]
    assert sum(weight for _, weight in shares) == pytest.approx(3.0)
    (tiny, _), weight = distributed.shard((x[:1], y[:1]), distributed.Ranks(1, 2))
    assert len(tiny) == 1 and weight == 0.0  # an empty share still takes part, adding nothing


def test_one_process_and_each_rank_alone_train_without_ranks():
    assert distributed.join(torch.device("cpu")) is None
    with distributed.each_rank_alone():
        assert distributed.join(torch.device("cpu")) is None


def test_the_old_name_modlearn_distributed_is_the_same_module():
    import modlearn.distributed as old_name

    assert old_name is distributed
    with old_name.each_rank_alone():  # one context: the old name sets the flag fit reads
        assert distributed._alone.get()
