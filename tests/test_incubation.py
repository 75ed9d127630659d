"""Deep Incubation (modlearn/incubation/, notebook 03)."""

import copy
import multiprocessing
import os
import subprocess
import sys
import time

import pytest
import torch
from conftest import ROOT

from modlearn import incubation as inc_lib
from modlearn.api import ModelContractError, Run
from modlearn.data import load_dataset
from modlearn.models import ResidualMLP, TinyViT
from modlearn.train import Hook

STEPS = 8


@pytest.fixture(scope="module")
def problem():
    """A pretrained meta model with its target (digits, width 32, 2 blocks per stage)."""
    return inc_lib.demo_problem(steps=STEPS)


def _params(module):
    return {name: p.detach().clone() for name, p in module.named_parameters()}


class _FrozenOutsideStage(Hook):
    """Snapshots the hybrid at the start of `fit` and compares every parameter at its end."""

    def __init__(self, index):
        self.index, self.changed_outside, self.changed_inside = index, None, None

    def on_fit_start(self, state):
        self.before = _params(state.model)

    def on_fit_end(self, state):
        after = _params(state.model)
        inside = f"stages.{self.index}."
        changed = {n for n in after if not torch.equal(after[n], self.before[n])}
        self.changed_outside = sorted(n for n in changed if not n.startswith(inside))
        self.changed_inside = sorted(n for n in changed if n.startswith(inside))


@pytest.mark.parametrize("index", [0, 2, 3])
def test_incubate_changes_only_the_target_stage(problem, index):
    inc, data = problem
    meta_before, target_before = _params(inc.meta), _params(inc.target)
    hook = _FrozenOutsideStage(index)
    inc.incubate(index, data, hooks=[hook])
    assert hook.changed_outside == [], f"parameters outside stage {index} changed: {hook.changed_outside}"
    assert hook.changed_inside, "the target stage did not train"
    for before, module in ((meta_before, inc.meta), (target_before, inc.target)):
        assert all(torch.equal(before[n], p) for n, p in module.named_parameters())


def _tiny_pair(blocks_per_stage=1):
    data = inc_lib.low_data(load_dataset("digits", verbose=False), 0.1)
    meta, target = inc_lib.make_pair(
        "resmlp", data.input_shape, 10, width=16, blocks_per_stage=blocks_per_stage
    )
    return data, meta, target


TINY_PHASES = inc_lib.IncubationConfig(meta_steps=3, incubation_steps=2, finetune_steps=4)


def test_train_incubation_runs_every_phase_from_the_train_config():
    data, meta, target = _tiny_pair()
    meta_before, target_before = copy.deepcopy(meta), copy.deepcopy(target)
    run = inc_lib.train_incubation(
        target, data, TINY_PHASES, inc_lib.paper_train(batch_size=16, seed=3), meta=meta, parallel=False
    )
    assert isinstance(run, Run) and run.method == "incubation" and not run.interrupted
    assert {name: h.num_steps for name, h in run.histories.items()} == {
        "meta": 3,
        "stage 0": 2,
        "stage 1": 2,
        "stage 2": 2,
        "stage 3": 2,
        "finetune": 4,
    }
    assert list(run.histories) == ["meta", "stage 0", "stage 1", "stage 2", "stage 3", "finetune"]
    assert run.history is run.histories["finetune"]
    inc = run.extras.incubation
    assert run.extras.meta is inc.meta and inc.mode == "sequential"
    assert not _same_params(run.extras.meta, meta_before), "the meta model was not pretrained"
    assert _same_params(meta, meta_before), "the meta model passed changed"
    assert _same_params(target, target_before), "the target passed changed"
    x = data.test.x[:8]
    assert not torch.equal(run.model(x), inc.assemble()(x)), "the assembled model was not fine-tuned"


def _same_params(a, b):
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))


class _CountFits(Hook):
    def __init__(self):
        self.fits, self.steps = 0, 0

    def on_fit_start(self, state):
        self.fits += 1

    def on_step_end(self, state):
        self.steps += 1


def test_hooks_run_in_this_process_and_refuse_worker_processes(monkeypatch):
    data, meta, target = _tiny_pair()
    counter = _CountFits()
    with pytest.raises(ValueError, match="hooks cannot reach worker processes"):
        inc_lib.train_incubation(target, data, TINY_PHASES, hooks=[counter], meta=meta, parallel=True)
    assert counter.fits == 0, "parallel=True with hooks must be refused before any fit"
    # parallel=None with hooks: no estimate, no workers (the estimate would measure steps first)
    monkeypatch.setattr(inc_lib.method, "estimate_sequential_s", lambda *a, **k: pytest.fail("estimated"))
    run = inc_lib.train_incubation(target, data, TINY_PHASES, hooks=[counter], meta=meta)
    assert run.extras.incubation.mode == "sequential"
    assert (counter.fits, counter.steps) == (len(run.histories), run.steps) == (6, 3 + 4 * 2 + 4)


class _CtrlC(Hook):
    """Raises KeyboardInterrupt, as Ctrl-C does, at the first step of the `call`-th fit (1-based)."""

    def __init__(self, call):
        self.call, self.calls = call, 0

    def on_fit_start(self, state):
        self.calls += 1

    def on_step_end(self, state):
        if self.calls == self.call:
            raise KeyboardInterrupt


def test_ctrl_c_in_an_incubation_returns_the_target_with_the_finished_stages(capsys):
    data, meta, target = _tiny_pair()
    run = inc_lib.train_incubation(target, data, TINY_PHASES, hooks=[_CtrlC(3)], meta=meta)
    assert run.interrupted and list(run.histories) == ["meta", "stage 0", "stage 1"]
    assert run.history is run.histories["stage 1"] and run.history.interrupted
    inc = run.extras.incubation
    assert list(inc.incubated) == [0] and list(inc.unfinished) == [1]
    stages = inc_lib.split_stages(run.model, 4)
    assert all(torch.equal(v, inc.incubated[0][k]) for k, v in stages[0].state_dict().items())
    initial = inc_lib.split_stages(target, 4)
    for i in (1, 2, 3):
        assert _same_params(stages[i], initial[i]), f"stage {i} did not finish and must be initial"
    assert "Interrupted: stages [0] finished and kept" in capsys.readouterr().out


def test_ctrl_c_in_the_meta_pretraining_returns_the_initial_target():
    data, meta, target = _tiny_pair()
    run = inc_lib.train_incubation(target, data, TINY_PHASES, hooks=[_CtrlC(1)], meta=meta)
    assert run.interrupted and list(run.histories) == ["meta"]
    assert run.model is not target and _same_params(run.model, target)


def test_ctrl_c_in_the_finetuning_keeps_the_stages_and_what_it_trained():
    data, meta, target = _tiny_pair()
    run = inc_lib.train_incubation(target, data, TINY_PHASES, hooks=[_CtrlC(6)], meta=meta)
    assert run.interrupted and run.history is run.histories["finetune"]
    assert run.histories["finetune"].num_steps == 1
    assert not _same_params(run.model, run.extras.incubation.assemble())


def test_default_meta_follows_make_pairs_rule():
    data, meta, target = _tiny_pair(blocks_per_stage=2)
    default = inc_lib.default_meta(target, 4)
    assert [p.shape for p in default.parameters()] == [p.shape for p in meta.parameters()]
    assert default.blocks[2] is not target.blocks[3] and _same_params(default.blocks[2], target.blocks[3])
    before = copy.deepcopy(target)
    run = inc_lib.train_incubation(target, data, TINY_PHASES)
    assert _same_params(target, before) and run.history.num_steps == 4
    assert [p.shape for p in run.extras.meta.parameters()] == [p.shape for p in meta.parameters()]


def _sequential(hidden_layers):
    torch.manual_seed(0)
    hidden = [m for _ in range(hidden_layers) for m in (torch.nn.Linear(16, 16), torch.nn.ReLU())]
    return torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(), *hidden, torch.nn.Linear(16, 10)
    )


def test_a_plain_sequential_target_is_converted_and_comes_back_trained():
    data = inc_lib.low_data(load_dataset("digits", verbose=False), 0.1)
    seq = _sequential(4)  # an embedding block, 4 hidden blocks (1 per stage), a head
    before = copy.deepcopy(seq)
    run = inc_lib.train_incubation(seq, data, TINY_PHASES)
    assert type(run.model) is torch.nn.Sequential and run.model is not seq
    assert _same_params(seq, before), "the Sequential passed changed"
    x = data.test.x[:8]
    assert not torch.equal(run.model(x), run.extras.incubation.assemble()(x)), "not fine-tuned"
    with pytest.raises(ModelContractError, match=r"4 equal stages.*make_pair"):
        inc_lib.train_incubation(_sequential(3), data, TINY_PHASES)


@pytest.mark.parametrize("kind", ["resmlp", "vit"])
def test_assembled_model_equals_chaining_incubated_stages(kind):
    shape = (1, 8, 8)
    meta, target = inc_lib.make_pair(kind, shape, 10, width=16, blocks_per_stage=2)
    config = inc_lib.IncubationConfig(incubation_steps=2)
    inc = inc_lib.DeepIncubation(meta, target, shape, config, inc_lib.paper_train(batch_size=32, lr=1e-2))
    data = inc_lib.low_data(load_dataset("digits", verbose=False), 0.1)
    inc.incubate_all(data, parallel=False)
    assembled = inc.assemble()
    stages = [copy.deepcopy(s) for s in inc.target_stages]
    for i, stage in enumerate(stages):
        stage.load_state_dict(inc.incubated[i])
    x = torch.randn(5, *shape)
    h = x
    for stage in stages:
        h = stage(h)
    assert torch.equal(assembled(x), h)
    assert not torch.equal(target(x), h), "the assembled model is still the initial target"


def test_parallel_and_sequential_incubation_give_identical_weights(problem, monkeypatch):
    inc, data = problem
    inc_lib.close_worker_pools()
    monkeypatch.setattr(inc_lib.pool, "_measured_start_s", {})
    before = {p.pid for p in multiprocessing.active_children()}  # other tests' leftovers, if any

    def workers() -> set[int]:
        return {p.pid for p in multiprocessing.active_children()} - before

    inc.incubate_all(data, parallel=True)
    assert workers() == set(), "without keep_workers the workers stop at the end"
    # a fresh Python importing PyTorch and building an optimizer takes well over half a second
    assert inc_lib.pool._measured_start_s[2] > 0.5
    parallel = dict(inc.incubated)
    inc.incubate_all(data, parallel=True, keep_workers=True)
    # the workers are kept: the next run starts none and its stages are the same
    assert inc_lib.worker_start_s(2) == inc_lib.POOL_DISPATCH_S
    kept = workers()
    inc.incubate_all(data, parallel=True, keep_workers=True)
    assert workers() == kept and len(kept) == 2
    assert inc_lib.same_weights(parallel, inc.incubated)
    inc_lib.close_worker_pools()
    assert workers() == set()
    assert inc_lib.worker_start_s(2) == inc_lib.pool._measured_start_s[2]
    inc.incubate_all(data, parallel=False)
    assert inc_lib.same_weights(parallel, inc.incubated)
    inc.incubated[1] = {k: v + 1e-7 for k, v in inc.incubated[1].items()}
    assert not inc_lib.same_weights(parallel, inc.incubated)


def test_processes_fall_back_when_their_start_up_exceeds_the_saving():
    # 2 workers on 2 free CPUs save half of the sequential 30 s
    assert inc_lib.processes_pay_off(30, workers=2, cpus=2, start_s=14.9)
    assert not inc_lib.processes_pay_off(30, workers=2, cpus=2, start_s=15.1)
    # other jobs keep half of the second CPU busy: below 2 free CPUs processes never pay off
    assert not inc_lib.processes_pay_off(1000, workers=2, cpus=1.5, start_s=0)
    # a quiet machine: daemons take a few percent of a CPU, and processes still pay off
    assert inc_lib.processes_pay_off(30, workers=2, cpus=1.96, start_s=10)
    # 3 workers on 2.5 free CPUs: the 4 incubations take 30 / 2.5 s, saving 18 s
    assert inc_lib.processes_pay_off(30, workers=3, cpus=2.5, start_s=17.9)
    assert not inc_lib.processes_pay_off(30, workers=3, cpus=2.5, start_s=18.1)


def test_parallel_mode_uses_the_start_up_measured_in_this_session(problem, monkeypatch, capsys):
    inc, data = problem
    monkeypatch.setattr(inc_lib.method, "estimate_sequential_s", lambda *args, **kwargs: 100.0)
    monkeypatch.setattr(inc_lib.method, "available_cpus", lambda: 64)  # free CPUs whatever else runs here
    monkeypatch.setitem(inc_lib.pool._measured_start_s, 2, 51.0)  # 2 workers would save 50 s
    assert inc.parallel_mode(data) == "sequential"
    assert "take about 51.0 s to start (as measured in this session" in capsys.readouterr().out
    monkeypatch.setitem(inc_lib.pool._measured_start_s, 2, 49.0)
    assert inc.parallel_mode(data) == "processes"


def test_other_load_counts_the_machine_less_this_process(monkeypatch):
    samples = iter([(0.0, 10.0, 5.0), (2.0, 14.0, 7.0)])  # (wall, machine busy, own CPU seconds)
    monkeypatch.setattr(inc_lib.OtherLoad, "_sample", staticmethod(lambda: next(samples)))
    with inc_lib.OtherLoad() as load:
        pass
    assert load.cpus == 1.0  # (4 - 2) CPU seconds of others over 2 s


def test_other_load_sees_a_busy_process():
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        with inc_lib.OtherLoad() as load:
            time.sleep(1.0)
    finally:
        spinner.kill()
        spinner.wait()
    assert load.cpus > 0.6, load.cpus


def test_frozen_downstream_stages_pass_gradients(problem):
    inc, data = problem
    grads = inc_lib.stage_gradients(inc.hybrid(1), (data.train.x[:32], data.train.y[:32]))
    assert grads["output_grad"][0] == 0.0 and all(g > 0 for g in grads["output_grad"][1:])
    assert [g > 0 for g in grads["weight_grad"]] == [False, True, False, False]


def test_bad_input_names_the_stage():
    shape = (1, 8, 8)
    with pytest.raises(ValueError, match="stage 3"):  # 3 meta blocks cannot make 4 stages
        inc_lib.DeepIncubation(ResidualMLP(shape, 16, depth=3), ResidualMLP(shape, 16, depth=8), shape)
    three = inc_lib.StagedModel(inc_lib.split_stages(ResidualMLP(shape, 16, depth=3), 3))
    with pytest.raises(ValueError, match="stage 3"):
        inc_lib.check_compatible(
            three.stages, inc_lib.split_stages(ResidualMLP(shape, 16, depth=8), 4), shape
        )
    with pytest.raises(ValueError, match="stage 3 has no counterpart"):
        inc_lib.DeepIncubation(three, ResidualMLP(shape, 16, depth=8), shape)
    with pytest.raises(ValueError, match="stage 0"):  # widths 16 vs 24
        inc_lib.DeepIncubation(ResidualMLP(shape, 16, depth=4), ResidualMLP(shape, 24, depth=8), shape)
    with pytest.raises(ValueError, match="stage 0"):
        inc_lib.DeepIncubation(TinyViT(8, dim=16, depth=4), TinyViT(8, dim=32, depth=8), shape)
    inc = inc_lib.DeepIncubation(ResidualMLP(shape, 16, depth=4), ResidualMLP(shape, 16, depth=8), shape)
    with pytest.raises(ValueError, match="stage 0 has not been incubated"):
        inc.assemble()
    with pytest.raises(ValueError, match="stage index 4"):
        inc.hybrid(4)
    with pytest.raises(ValueError, match="unknown model kind"):
        inc_lib.make_pair("resnet", shape)
    with pytest.raises(ValueError, match="incubation_steps"):
        inc_lib.IncubationConfig(incubation_steps=0)


def _demo(out, launcher=(), flags=()):
    """Run the demo of `modlearn.incubation` in a fresh process (1 OpenMP thread, as torchrun sets)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        *launcher,
        "-m",
        "modlearn.incubation",
        "--demo",
        "--out",
        str(out),
        "--steps",
        str(STEPS),
        *flags,
    ]
    done = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return done.stdout, torch.load(out, weights_only=True)


def test_torchrun_two_ranks_match_the_single_process_run(tmp_path):
    # both runs in fresh processes: the OpenMP thread count at start-up changes CPU round-off
    torchrun = ("-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2")
    log, distributed = _demo(tmp_path / "ranks.pt", torchrun)
    assert "world size 2" in log
    _, single = _demo(tmp_path / "single.pt", flags=("--sequential",))
    assert single.keys() == distributed.keys()
    assert all(torch.equal(single[k], distributed[k]) for k in single)


def test_incubation_figures_draw_validation_values_only(problem):
    inc, data = problem
    history = inc.incubate(0, data)
    fig = inc_lib.plot_incubation({0: history}, meta_val_acc=0.5)
    reference = [line for line in fig.axes[0].lines if line.get_label() == "meta model (val)"]
    assert [list(line.get_ydata()) for line in reference] == [[0.5, 0.5]]
    curve = inc_lib.plot_budget_curves(history, history, STEPS, assembled_val_acc=0.25)
    start = next(line for line in curve.axes[0].lines if line.get_label().startswith("assembled"))
    assert start.get_ydata()[0] == 0.25 and start.get_xdata()[0] == STEPS
