"""`DeepIncubation`: the method's three phases for one (meta, target) pair, step by step.

Meta pretraining, the K incubations (one after the other, in worker processes, or on `torchrun`
ranks), assembly and fine-tuning; `train_incubation` runs them all in one call.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool

import torch.nn as nn

from ..api import trainable_copy
from ..data import Dataset
from ..env import available_cpus
from ..interrupts import report_interrupt
from ..train import History, Hook, TrainConfig, distributed
from ..validate import check_shape, check_type
from .config import IncubationConfig, fit_steps, paper_train
from .cpus import OtherLoad, estimate_sequential_s, processes_pay_off
from .hybrid import Job, Result, StageState, build_hybrid, cpu_state, incubate_stage, incubation_job
from .pool import close_worker_pools, incubate_in_processes, start_up_source, worker_start_s
from .ranks import incubate_on_ranks
from .staged import StagedModel, check_compatible, on_cpu, split_stages


def requested_mode(parallel: bool, hooks: Sequence[Hook] = ()) -> str:
    """The mode `parallel=True` or `False` asks for: `"ranks"` under `torchrun`, else `"processes"`.

    Raises a `ValueError` for `parallel=True` with `hooks` outside `torchrun`: a hook cannot reach a
    worker process (its calls, and what it records, would stay in the worker)."""
    if not parallel:
        return "sequential"
    if distributed.world_size() > 1:
        return "ranks"
    if hooks:
        raise ValueError(
            f"parallel=True with hooks={list(hooks)!r}: hooks cannot reach worker processes (a hook's calls "
            "and what it records would stay in the workers); pass parallel=False, or parallel=None (which "
            "incubates in this process when hooks are given), or no hooks"
        )
    return "processes"


def _results(jobs: list[Job], mode: str, workers: int, hooks: Sequence[Hook]) -> Iterator[Result]:
    """The jobs' results, each as it becomes available."""
    if mode == "processes":
        yield from incubate_in_processes(jobs, workers)
    elif mode == "ranks":
        yield from incubate_on_ranks(jobs, hooks)
    else:
        for job in jobs:
            yield incubation_job(job, hooks)


class DeepIncubation:
    """Meta pretraining, incubation of each stage, assembly and fine-tuning for one (meta, target).

    `meta` and `target` are `BlockModel`s (or `StagedModel`s) cut into `config.stages` stages with
    the same interfaces (checked on a probe input `(2, *input_shape)`). Neither is changed: `inc.meta`
    is a copy of `meta` (the one `pretrain_meta` trains), incubation trains copies of the target's
    stages, and `train_e2e` starts from the target's weights. `train` (default `paper_train()`) is the
    base of every phase's `fit` (see `fit_steps`).

    After `incubate_all`: `incubated` and `histories` hold the finished stages' weights and histories
    by index, `unfinished` the stages Ctrl-C stopped (their history in this process, an empty one
    marked interrupted for stages that ran in workers or on other ranks), `mode` how they ran.
    """

    def __init__(
        self,
        meta: nn.Module,
        target: nn.Module,
        input_shape: Sequence[int],
        config: IncubationConfig | None = None,
        train: TrainConfig | None = None,
    ) -> None:
        owner = "DeepIncubation"
        check_type("meta", meta, nn.Module, owner=owner, hint="pass the meta model (an nn.Module)")
        check_type("target", target, nn.Module, owner=owner, hint="pass the target model (an nn.Module)")
        check_shape("input_shape", input_shape, owner=owner)
        check_type(
            "config",
            config,
            IncubationConfig,
            owner=owner,
            optional=True,
            hint="pass an IncubationConfig(...)",
        )
        check_type(
            "train",
            train,
            TrainConfig,
            owner=owner,
            optional=True,
            hint="pass a TrainConfig(...), e.g. incubation.paper_train()",
        )
        self.config, self.train = config or IncubationConfig(), train or paper_train()
        self.config.check_lr(self.train)
        self.meta, self.target = trainable_copy(meta), target
        self.meta_stages = split_stages(self.meta, self.config.stages, "the meta model")
        self.target_stages = split_stages(target, self.config.stages, "the target")
        check_compatible(self.meta_stages, self.target_stages, input_shape)
        self.incubated: dict[int, StageState] = {}
        self.histories: dict[int, History] = {}
        self.unfinished: dict[int, History] = {}
        self.mode = ""

    @property
    def num_stages(self) -> int:
        return self.config.stages

    def pretrain_meta(self, data: Dataset, hooks: Iterable[Hook] = ()) -> History:
        """Phase 1: train the meta model `inc.meta` end to end for `config.meta_steps` steps."""
        return self._fit(self.meta, data, self.config.meta_steps, "meta model", hooks=hooks)

    def hybrid(self, index: int) -> StagedModel:
        """The hybrid of incubation `index`, with a fresh copy of the initial target stage."""
        self._check_index(index)
        return build_hybrid(self.meta_stages, copy.deepcopy(self.target_stages[index]), index)

    def incubate(self, index: int, data: Dataset, hooks: Iterable[Hook] = ()) -> History:
        """Phase 2 for one stage: incubate a copy of initial target stage `index`; keep its weights."""
        self._check_index(index)
        stage = copy.deepcopy(self.target_stages[index])
        history = incubate_stage(self.meta_stages, stage, index, data, self.config, self.train, hooks)
        self._keep(index, cpu_state(stage), history)
        return history

    def incubate_all(
        self,
        data: Dataset,
        parallel: bool | None = None,
        keep_workers: bool = False,
        hooks: Sequence[Hook] = (),
    ) -> dict[int, History]:
        """Phase 2 for every stage; each stage is kept in `incubated` as soon as it finishes.

        `parallel=True`: across `torchrun` ranks when launched that way, else in `config.workers`
        spawned processes; `False`: one after the other in this process; `None`: as `parallel_mode`
        decides, in this process (or on the ranks) when `hooks` are given. `hooks` go to every
        incubation's `fit`; worker processes cannot take them, so `parallel=True` with hooks outside
        `torchrun` raises a `ValueError`. `keep_workers=True` keeps the worker processes for the next
        call, which then pays no start-up (`close_worker_pools()` stops them); by default they stop at
        the end. Ctrl-C terminates the workers and keeps the stages that finished. When a worker dies
        (killed for memory, say), the stages not yet finished run in this process.
        Returns the finished stages' histories by index.
        """
        hooks = list(hooks)
        if parallel is None:
            mode = self.parallel_mode(data) if not hooks else requested_mode(distributed.world_size() > 1)
        else:
            mode = requested_mode(parallel, hooks)
        self.mode, self.unfinished = mode, {}
        meta_stages = [copy.deepcopy(s).cpu() for s in self.meta_stages]
        jobs = [
            (meta_stages, copy.deepcopy(stage).cpu(), i, data, self.config, self.train)
            for i, stage in enumerate(self.target_stages)
        ]
        try:
            self._run(jobs, mode, hooks)
        finally:
            if not keep_workers:
                close_worker_pools()
        return self.histories

    def parallel_mode(self, data: Dataset) -> str:
        """How `incubate_all(parallel=None)` runs: `"ranks"` under `torchrun`, `"processes"` when
        `processes_pay_off` for the estimated sequential time, the CPUs that other processes leave
        free meanwhile and `worker_start_s`, else `"sequential"` (said in a line)."""
        if distributed.world_size() > 1:
            return "ranks"
        workers = min(self.config.workers, self.num_stages)
        with OtherLoad() as load:
            estimate = estimate_sequential_s(
                [on_cpu(s) for s in self.meta_stages],
                [on_cpu(s) for s in self.target_stages],
                data,
                self.config,
                self.train,
            )
        cpus, start = max(1.0, available_cpus() - load.cpus), worker_start_s(workers)
        if processes_pay_off(estimate, workers, cpus, start):
            return "processes"
        print(
            f"Incubating one stage after the other in this process: {workers} worker processes on the "
            f"{cpus:.1f} CPU(s) that other jobs leave free would save at most "
            f"{estimate * (1 - 1 / max(1.0, min(workers, cpus))):.1f} s of the estimated {estimate:.1f} s "
            f"but take about {start:.1f} s to start ({start_up_source(workers)}; parallel=True forces them).",
            flush=True,
        )
        return "sequential"

    def _run(self, jobs: list[Job], mode: str, hooks: Sequence[Hook] = ()) -> None:
        """Run `jobs` (`mode`: "sequential", "processes" or "ranks"), keeping each result as it arrives."""
        done: list[int] = []
        try:
            with contextlib.closing(_results(jobs, mode, self.config.workers, hooks)) as results:
                for index, state, history in results:
                    if history.interrupted:
                        self.unfinished[index] = history
                        raise KeyboardInterrupt
                    done.append(index)
                    self._keep(index, state, history)
        except KeyboardInterrupt:
            left = [job[2] for job in jobs if job[2] not in done]
            if not self.unfinished:  # stopped outside this process's fit: what the others did is lost
                self.unfinished = {i: History(interrupted=True) for i in left}
            report_interrupt("stages", done, left)
        except BrokenProcessPool as err:
            left_jobs = [job for job in jobs if job[2] not in done]
            print(
                f"A worker process died ({err}): incubating stages {[job[2] for job in left_jobs]} in this "
                "process instead.",
                flush=True,
            )
            self._run(left_jobs, "sequential")

    def assemble(self, partial: bool = False) -> nn.Module:
        """Phase 3a: a copy of the target whose stages are the incubated ones (on the CPU).

        Raises a `ValueError` when a stage has not been incubated, unless `partial=True`: then such a
        stage keeps the target's initial weights."""
        missing = [i for i in range(self.num_stages) if i not in self.incubated]
        if missing and not partial:
            raise ValueError(
                f"stage {missing[0]} has not been incubated yet: call incubate({missing[0]}) "
                "or incubate_all() first"
            )
        model = copy.deepcopy(self.target).cpu()
        for i, stage in enumerate(split_stages(model, self.num_stages)):
            if i in self.incubated:
                stage.load_state_dict(self.incubated[i])
        return model

    def finetune(self, model: nn.Module, data: Dataset, hooks: Iterable[Hook] = ()) -> History:
        """Phase 3b: fine-tune the assembled `model` in place, end to end, for `config.finetune_steps`
        steps (gradients clipped at `config.finetune_grad_clip`)."""
        steps, clip = self.config.finetune_steps, self.config.finetune_grad_clip
        return self._fit(model, data, steps, "fine-tune", clip, hooks)

    def train_e2e(self, data: Dataset, hooks: Iterable[Hook] = ()) -> tuple[nn.Module, History]:
        """The baseline: a copy of the initial target trained end to end for `incubation_steps +
        finetune_steps` steps, i.e. as many updates of every target block as incubation plus
        fine-tuning give it."""
        model = trainable_copy(self.target)
        steps = self.config.incubation_steps + self.config.finetune_steps
        return model, self._fit(model, data, steps, "E2E", hooks=hooks)

    def _fit(
        self,
        model: nn.Module,
        data: Dataset,
        steps: int,
        desc: str,
        grad_clip: float | None = None,
        hooks: Iterable[Hook] = (),
    ) -> History:
        min_lr = self.config.min_lr
        return fit_steps(model, data, self.train, steps, min_lr, desc, grad_clip=grad_clip, hooks=hooks)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.num_stages:
            raise ValueError(f"stage index {index} must lie in [0, {self.num_stages - 1}]")

    def _keep(self, index: int, state: StageState, history: History) -> None:
        self.incubated[index], self.histories[index] = state, history
