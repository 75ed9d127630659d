"""Ctrl-C in methods that call `fit` several times: greedy modules, DCM groups, incubated stages.

The interrupt is raised from inside `fit` (a hook), where Ctrl-C lands in practice; `fit` turns it
into a history with `interrupted=True` and the method must stop its remaining stages.
"""

import dataclasses
import multiprocessing
import os
import signal
import time

import pytest
import torch

import modlearn as ml
from modlearn import causal, local
from modlearn import incubation as inc_lib
from modlearn.train import Hook


class InterruptInFit(Hook):
    """Raises KeyboardInterrupt, as Ctrl-C does, at step `step` of the `call`-th `fit` (1-based)."""

    def __init__(self, call: int, step: int = 2) -> None:
        self.call, self.step, self.calls = call, step, 0

    def on_fit_start(self, state):
        self.calls += 1

    def on_step_end(self, state):
        if self.calls == self.call and state.step == self.step:
            raise KeyboardInterrupt


def _inject(monkeypatch, package, hook):
    """Make every `fit` called from `package` (any of its modules) also run `hook`."""
    import sys

    from modlearn.train import fit as real_fit

    def fit(*args, hooks=(), **kw):
        return real_fit(*args, hooks=[*hooks, hook], **kw)

    for name, module in list(sys.modules.items()):
        if (name == package.__name__ or name.startswith(package.__name__ + ".")) and hasattr(module, "fit"):
            if module.fit is real_fit:
                monkeypatch.setattr(module, "fit", fit)


def _snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def _same(before, module):
    return all(torch.equal(a, b) for a, b in zip(before, module.parameters(), strict=True))


def test_greedy_stops_after_the_interrupted_module(monkeypatch, capsys):
    digits = ml.load_dataset("digits", verbose=False)
    digits = dataclasses.replace(digits, train=digits.train.subset(256), val=digits.val.subset(64))
    torch.manual_seed(0)
    model = ml.make_model("mlp", digits.input_shape, digits.num_classes, hidden=(32, 32, 32))
    net = local.local_net(model, digits, local.LocalConfig(mode="greedy"))
    stages, heads = [_snapshot(s) for s in net.stages], [_snapshot(h) for h in net.heads]
    run = local.train_local(
        model,
        digits,
        local.LocalConfig(mode="greedy"),
        ml.TrainConfig(epochs=2, batch_size=32, progress=False),
        hooks=[InterruptInFit(call=2)],
    )
    assert run.interrupted and list(run.histories) == ["module 1", "module 2"]
    assert not run.histories["module 1"].interrupted and run.histories["module 2"].interrupted
    run_net = run.extras.net
    assert not _same(stages[0], run_net.stages[0]), "module 1 finished and must be trained"
    assert not _same(stages[1], run_net.stages[1]), "module 2 trained until the interrupt"
    for k in range(2, len(stages)):
        assert _same(stages[k], run_net.stages[k]) and _same(heads[k], run_net.heads[k]), (
            f"module {k + 1} was trained after the interrupt"
        )
    assert "Interrupted: modules [1] finished and kept" in capsys.readouterr().out


def test_modular_dcm_stops_after_the_interrupted_group(capsys):
    graph = causal.CausalGraph.parse("A -> B, A -> C, B -> D, C -> D, A <-> D")
    config = causal.DCMConfig(noise_dim=4, confounder_dim=4, hidden=(16,), critic_hidden=(16,))
    train = causal.dcm_train_config(lr=1e-2, batch_size=64, max_steps=6, seed=0)
    dcm = causal.DCM(graph, [causal.Variable(v) for v in "ABCD"], config)
    data = {v: torch.randint(0, 2, (300,)) for v in "ABCD"}
    groups = [s.generators for s in graph.training_steps()]
    assert len(groups) == 3
    before = {v: _snapshot(dcm.generators[v]) for v in "ABCD"}
    run = causal.train_dcm(dcm, data, train=train, hooks=[InterruptInFit(call=2)])
    assert run.extras.steps == groups[:2] and list(run.histories) == [",".join(g) for g in groups[:2]]
    assert run.history.interrupted and run.interrupted
    for v in groups[0] + groups[1]:
        assert not _same(before[v], run.model.generators[v]), f"{v} was not trained"
    for v in groups[2]:
        assert _same(before[v], run.model.generators[v]), f"{v} of a later group was trained"
    assert f"Interrupted: groups [{groups[0]!r}] finished and kept" in capsys.readouterr().out


@pytest.fixture(scope="module")
def problem():
    return inc_lib.demo_problem(steps=8)


def test_sequential_incubation_keeps_the_finished_stages(problem, monkeypatch):
    inc, data = problem
    inc.incubated.clear(), inc.histories.clear()
    _inject(monkeypatch, inc_lib, InterruptInFit(call=2))
    histories = inc.incubate_all(data, parallel=False)
    assert list(inc.incubated) == [0] and list(histories) == [0]


def test_parallel_incubation_terminates_workers_and_keeps_finished_stages(monkeypatch):
    inc, data = inc_lib.demo_problem(steps=8)
    inc.config.incubation_steps = 400  # several seconds per stage
    real_keep, interrupted_at = inc_lib.DeepIncubation._keep, []

    def keep_then_ctrl_c(self, *args):
        real_keep(self, *args)
        interrupted_at.append(time.perf_counter())
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(inc_lib.DeepIncubation, "_keep", keep_then_ctrl_c)
    start = time.perf_counter()
    inc.incubate_all(data, parallel=True)
    returned = time.perf_counter()
    first_stage = interrupted_at[0] - start
    assert len(interrupted_at) == 1 and len(inc.incubated) == 1
    assert inc.incubated.keys() == inc.histories.keys()
    assert returned - interrupted_at[0] < 2.0, (
        f"returned {returned - interrupted_at[0]:.1f} s after Ctrl-C "
        f"(the first stage took {first_stage:.1f} s)"
    )
    assert multiprocessing.active_children() == []


class _KillsItsWorker(ml.Dataset):
    """A dataset that ends the process unpickling it: a worker dying mid-job (as when killed for memory)."""

    def __reduce__(self):
        return os._exit, (1,)


def test_dead_worker_makes_the_stages_run_in_this_process(problem, capsys):
    inc, data = problem
    inc.incubate_all(data, parallel=False)
    sequential = dict(inc.incubated)
    inc.incubated.clear(), inc.histories.clear()
    inc.incubate_all(_KillsItsWorker(**vars(data)), parallel=True)
    assert "A worker process died" in capsys.readouterr().out
    assert inc_lib.same_weights(sequential, inc.incubated)
    assert multiprocessing.active_children() == []


def test_worker_processes_only_when_they_pay_off(problem, capsys):
    # 2 workers save half of the sequential time and take 2 x WORKER_START_S to start
    start = 2 * inc_lib.WORKER_START_S
    assert not inc_lib.processes_pay_off(2 * start - 1, workers=2, cpus=2)
    assert inc_lib.processes_pay_off(2 * start + 1, workers=2, cpus=2)
    assert not inc_lib.processes_pay_off(1000, workers=2, cpus=1), "one CPU: processes only add start-up"
    inc, data = problem
    assert inc.parallel_mode(data) == "sequential"  # 8 steps per stage: far below the start-up
    assert "Incubating one stage after the other in this process" in capsys.readouterr().out
