"""Deep Incubation: train a large model as K stages, each inside a small frozen *meta model*.

Ni, Wang, Yu, Jiang, Cao, Huang, "Deep Incubation: Training Large Models by Divide-and-Conquering"
(ICCV 2023, arXiv 2212.04129; a.k.a. Model Assembling). Three phases, all on the one loop `train.fit`:

1. **meta pretraining**: a small model with the target's K stage interfaces and one block per
   stage, trained end to end (`DeepIncubation.pretrain_meta`);
2. **incubation** of target stage i inside the *hybrid* model = meta stages everywhere except at
   position i. Only stage i is optimized with the ordinary task loss at the output; the meta stages
   are frozen, and the downstream ones still carry the gradient back to stage i (`incubate`). The K
   incubations share nothing but the frozen meta model, so `incubate_all` runs them in worker
   processes, or across ranks when launched with `torchrun`;
3. **assembly** of the incubated stages into the target (`assemble`) and end-to-end fine-tuning
   (`finetune`).

Taught in `tutorials/03_deep_incubation.ipynb`. `python -m modlearn.incubation --demo --out FILE`
runs a small incubation; under `python -m torch.distributed.run --nproc_per_node 2` rank r
incubates stages r, r + world, ... (gloo on CPU, NCCL on GPU).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import copy
import math
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import distributed
from .data import Dataset, load_dataset, num_batches
from .interrupts import report_interrupt
from .models import BlockModel, ResidualMLP, TinyViT
from .train import History, Hook, TrainConfig, TrainState, evaluate, fit, make_optimizer
from .validate import ConfigFields, check_shape, check_type

StageState = dict[str, torch.Tensor]
Result = tuple[int, StageState, History]
MODEL_KINDS = ("resmlp", "vit")
# wall-clock to start one spawned worker until it can train: a fresh Python importing PyTorch and
# modlearn (2.8-3.7 s), then its first optimizer, which imports torch._dynamo (1.9-2.9 s); two
# workers starting together on the 2-core development machine were ready after about 10 s
WORKER_START_S = 5.0
# the start-up of `workers` processes as last measured in this Python session (see `worker_start_s`)
_measured_start_s: dict[int, float] = {}
# the worker pools kept between calls, by number of workers (see `_worker_pool`), and what handing a
# kept pool the jobs (the meta model and the data, pickled) and collecting the stages costs
POOL_DISPATCH_S = 0.5
_pools: dict[int, ProcessPoolExecutor] = {}


# --------------------------------------------------------------------------- configuration


@dataclass
class IncubationConfig:
    """The method's settings of the three phases, after Ni et al. (ICCV 2023).

    Paper defaults kept: K = 4 stages, a cosine decay of the learning rate to `min_lr` = 1e-5 in
    every phase, gradient clipping 1.0 when fine-tuning, and meta : incubation : fine-tuning
    budgets in the ratio 300 : 100 : 100 (epochs on ImageNet there, optimizer steps here, so that
    full and low-data runs cost the same). `threads` is the torch thread count of every incubation,
    in worker processes and in the sequential path alike (so both give bit-identical weights);
    `workers` is the number of processes of `incubate_all(parallel=True)`. The loop's settings
    (AdamW, lr, batch size, seed, ...) are a `TrainConfig`, by default `paper_train()`.
    """

    stages: int = 4
    meta_steps: int = 3000
    incubation_steps: int = 1000
    finetune_steps: int = 1000
    min_lr: float = 1e-5
    finetune_grad_clip: float | None = 1.0
    workers: int = 2
    threads: int = 1

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        for name in ("stages", "meta_steps", "incubation_steps", "finetune_steps", "workers", "threads"):
            fields.integer(name, 1)
        fields.number("min_lr", 0)
        fields.number("finetune_grad_clip", 0, low_open=True, optional=True)

    def check_lr(self, train: TrainConfig) -> None:
        """Raise a `ValueError` unless `min_lr` lies below `train.lr`.

        The cosine schedule decays from one to the other."""
        if self.min_lr >= train.lr:
            raise ValueError(
                f"IncubationConfig(min_lr={self.min_lr}): min_lr must lie below the TrainConfig's "
                f"lr={train.lr}, where the cosine decay starts; lower min_lr or raise lr"
            )


def paper_train(**changes) -> TrainConfig:
    """The paper's loop settings: AdamW, lr 5e-4, weight decay 0.05, batch 128, seed 0, no progress
    bar; `changes` replace fields, e.g. `paper_train(lr=2e-3, batch_size=64)`."""
    defaults = dict(optimizer="adamw", lr=5e-4, weight_decay=0.05, batch_size=128, seed=0, progress=False)
    return TrainConfig(**{**defaults, **changes})


def fit_steps(
    model: nn.Module,
    data: Dataset,
    train: TrainConfig,
    steps: int,
    min_lr: float,
    desc: str,
    seed_offset: int = 0,
    grad_clip: float | None = None,
    hooks: Iterable[Hook] = (),
    params: Iterable[nn.Parameter] | None = None,
) -> History:
    """`fit` with `train` for exactly `steps` steps, the learning rate decaying (cosine) to `min_lr`.

    Of `train`, `epochs`, `max_steps` and `desc` are replaced to run `steps` steps; `seed` is
    shifted by `seed_offset` (each stage its own seed); `grad_clip`, when given, replaces `train.grad_clip`.
    """
    epochs = math.ceil(steps / num_batches(len(data.train), train.batch_size))
    seed = None if train.seed is None else train.seed + seed_offset
    config = replace(
        train,
        epochs=epochs,
        max_steps=steps,
        seed=seed,
        desc=desc,
        grad_clip=train.grad_clip if grad_clip is None else grad_clip,
    )
    return fit(model, data, config, hooks=[CosineDecay(min_lr), *hooks], params=params)


class CosineDecay(Hook):
    """Learning rate `min_lr + (lr - min_lr) (1 + cos(pi t / T)) / 2` after step t of T (the paper's)."""

    def __init__(self, min_lr: float) -> None:
        self.min_lr = min_lr

    def on_fit_start(self, state: TrainState) -> None:
        self.base = [group["lr"] for group in state.optimizer.param_groups]

    def state_dict(self) -> dict:
        """The base learning rates (a resumed optimizer holds decayed ones)."""
        return {"base": list(self.base)}

    def load_state_dict(self, state: dict) -> None:
        self.base = list(state["base"])

    def on_step_end(self, state: TrainState) -> None:
        progress = min(1.0, state.step / state.total_steps)
        for group, base in zip(state.optimizer.param_groups, self.base, strict=True):
            group["lr"] = self.min_lr + 0.5 * (base - self.min_lr) * (1 + math.cos(math.pi * progress))


# --------------------------------------------------------------------------- stages


class StagedModel(nn.Module):
    """Stages applied in order, `x -> stages[K-1](... stages[0](x))`: hybrids are these.

    A frozen stage (no parameter requires gradients) stays in eval mode when the model trains, so
    its BatchNorm statistics and dropout stay those of inference.
    """

    def __init__(self, stages: Iterable[nn.Module]) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)

    def train(self, mode: bool = True) -> StagedModel:
        super().train(mode)
        for stage in self.stages:
            if not any(p.requires_grad for p in stage.parameters()):
                stage.eval()
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return x


def split_stages(model: nn.Module, num_stages: int, name: str = "model") -> nn.ModuleList:
    """The `num_stages` stages of `model`, sharing its modules (no copy).

    A `BlockModel`'s body `blocks[1:]` is cut into equal groups; stage 0 also owns `blocks[0]` (the
    input embedding) and the last stage owns the head. A `StagedModel` returns its own stages.
    """
    if isinstance(model, StagedModel):
        if len(model.stages) != num_stages:
            raise ValueError(
                f"{name} has {len(model.stages)} stages but {num_stages} are asked for: stage "
                f"{min(len(model.stages), num_stages)} has no counterpart"
            )
        return model.stages
    if not isinstance(model, BlockModel):
        raise ValueError(
            f"{name} is a {type(model).__name__}: pass a BlockModel (ResidualMLP, TinyViT) or a StagedModel"
        )
    body = len(model.blocks) - 1
    if num_stages < 1 or body < num_stages or body % num_stages:
        problem = f"stage {body} would be empty" if body < num_stages else "the stages would differ in depth"
        raise ValueError(
            f"{name} has {body} blocks after its input embedding, which do not cut into "
            f"{num_stages} equal stages ({problem}): use a depth that is a multiple of "
            f"{num_stages}"
        )
    per_stage = body // num_stages
    stages = []
    for s in range(num_stages):
        blocks = list(model.blocks[1 + s * per_stage : 1 + (s + 1) * per_stage])
        if s == 0:
            blocks.insert(0, model.blocks[0])
        if s == num_stages - 1:
            blocks.append(model.head)
        stages.append(nn.Sequential(*blocks))
    return nn.ModuleList(stages)


@contextlib.contextmanager
def _eval_mode(modules: Sequence[nn.Module]) -> Iterator[None]:
    modes = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        yield
    finally:
        for m, mode in zip(modules, modes, strict=True):
            m.train(mode)


def _on_cpu(module: nn.Module) -> nn.Module:
    """`module` itself when it lives on the CPU, else a CPU copy."""
    return module if all(p.device.type == "cpu" for p in module.parameters()) else copy.deepcopy(module).cpu()


@torch.no_grad()
def check_compatible(
    meta_stages: Sequence[nn.Module], target_stages: Sequence[nn.Module], input_shape: Sequence[int]
) -> None:
    """Raise a `ValueError` naming the first stage where the target cannot replace the meta model.

    A probe input of `input_shape` runs through the meta stages; each target stage must accept the
    meta stage's input and return the meta stage's output shape.
    """
    if len(meta_stages) != len(target_stages):
        first = min(len(meta_stages), len(target_stages))
        raise ValueError(
            f"the meta model has {len(meta_stages)} stages but the target has "
            f"{len(target_stages)}: stage {first} has no counterpart; cut both into the same K"
        )
    h = torch.zeros(2, *input_shape)
    with _eval_mode([*meta_stages, *target_stages]):
        for i, (meta, target) in enumerate(zip(meta_stages, target_stages, strict=True)):
            expected = _on_cpu(meta)(h)
            try:
                got = _on_cpu(target)(h)
            except RuntimeError as err:
                raise ValueError(
                    f"stage {i}: the target stage cannot take the meta stage's input of shape "
                    f"{tuple(h.shape[1:])} ({err}); give meta and target the same widths"
                ) from err
            if got.shape != expected.shape:
                raise ValueError(
                    f"stage {i}: the target stage outputs shape {tuple(got.shape[1:])} but the "
                    f"meta stage outputs {tuple(expected.shape[1:])}; give meta and target "
                    "the same widths"
                )
            h = expected


def frozen_copy(module: nn.Module) -> nn.Module:
    """A deep copy of `module` whose parameters do not require gradients."""
    return copy.deepcopy(module).requires_grad_(False)


def build_hybrid(meta_stages: Sequence[nn.Module], target_stage: nn.Module, index: int) -> StagedModel:
    """The hybrid of incubation `index`: frozen copies of the meta stages, `target_stage` (not copied,
    trained in place) at position `index`."""
    return StagedModel(
        target_stage if j == index else frozen_copy(meta) for j, meta in enumerate(meta_stages)
    )


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with `n` torch threads, then restore the previous count."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def incubate_stage(
    meta_stages: Sequence[nn.Module],
    target_stage: nn.Module,
    index: int,
    data: Dataset,
    config: IncubationConfig,
    train: TrainConfig,
    hooks: Iterable[Hook] = (),
) -> History:
    """Train `target_stage` in place inside the hybrid of position `index`; returns its `History`.

    Only the target stage's parameters reach the optimizer; the loss is the ordinary task loss at
    the hybrid's output. Runs with `config.threads` torch threads and seed `train.seed + index`.
    """
    hybrid = build_hybrid(meta_stages, target_stage, index)
    with torch_threads(config.threads):
        return fit_steps(
            hybrid,
            data,
            train,
            config.incubation_steps,
            config.min_lr,
            f"incubate stage {index}",
            index,
            hooks=hooks,
            params=target_stage.parameters(),
        )


def _cpu_state(module: nn.Module) -> StageState:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def _incubation_job(job: tuple) -> Result:
    """Worker body (top level so that spawned processes can unpickle it): one incubation."""
    meta_stages, target_stage, index, data, config, train = job
    history = incubate_stage(meta_stages, target_stage, index, data, config, train)
    return index, _cpu_state(target_stage), history


def _warm_up_worker() -> None:
    """Worker initializer: pay a fresh process's one-time costs before its first job starts.

    Building the first optimizer imports `torch._dynamo` (seconds); this one, on a throwaway
    parameter, trains nothing, and `fit` seeds every incubation, so the stage weights stay
    bit-identical to the sequential run's. The first job thus begins when the worker is ready."""
    make_optimizer([nn.Parameter(torch.zeros(1))], TrainConfig())


def _timed_job(job: tuple) -> tuple[float, Result]:
    """`_incubation_job`, with the wall-clock time (`time.time()`) at which the worker began it."""
    return time.time(), _incubation_job(job)


def _worker_pool(workers: int) -> tuple[ProcessPoolExecutor, bool]:
    """This session's pool of `workers` spawned processes and whether it was started just now: a
    pool is kept between calls, so its processes pay their start-up once."""
    import torch.multiprocessing as mp

    if workers not in _pools:
        context = mp.get_context("spawn")
        _pools[workers] = ProcessPoolExecutor(workers, mp_context=context, initializer=_warm_up_worker)
        return _pools[workers], True
    return _pools[workers], False


def close_worker_pools() -> None:
    """Stop the worker processes kept between `incubate_all(parallel=True)` calls (done at exit too).
    A kept pool is idle, so its workers are let finish and exit (terminating them would leak the
    pool's semaphores; an interrupted pool is terminated where it is interrupted)."""
    while _pools:
        _pools.popitem()[1].shutdown(wait=True)


atexit.register(close_worker_pools)


def _incubate_in_processes(jobs: list[tuple], workers: int) -> Iterator[Result]:
    """Yield each job's result as soon as its worker finishes.

    The workers are kept for the next call (`close_worker_pools` stops them). A worker that dies
    (killed for memory, say) raises `BrokenProcessPool` here instead of leaving the caller waiting.
    Leaving early (Ctrl-C, an error, `close()`) terminates the workers.
    """
    workers = min(workers, len(jobs))
    created = time.time()
    executor, fresh = _worker_pool(workers)
    starts, finished = [], False
    try:
        for future in as_completed([executor.submit(_timed_job, job) for job in jobs]):
            began, result = future.result()
            starts.append(began - created)
            yield result
        finished = True
    finally:
        if not finished:
            _terminate(_pools.pop(workers))
    if fresh:  # every worker is busy once the first `workers` jobs have begun: that wait is the start-up
        _measured_start_s[workers] = sorted(starts)[workers - 1]


def _terminate(executor: ProcessPoolExecutor) -> None:
    """Stop `executor` now: queued jobs are cancelled, running workers terminated, not awaited."""
    # Python < 3.14 has no public `terminate_workers`; `_processes` maps pid -> Process until shutdown
    processes = list((executor._processes or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join()


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def worker_start_s(workers: int) -> float:
    """Seconds until `workers` spawned processes all train: `POOL_DISPATCH_S` while this session keeps
    a pool of that size; else as measured when this session last started one, else `WORKER_START_S`
    per worker."""
    if workers in _pools:
        return POOL_DISPATCH_S
    return _measured_start_s.get(workers, WORKER_START_S * workers)


# two CPUs, less the little that daemons and exiting processes take on a quiet machine (a quiet
# 2-core machine measured 1.96 free, and lost its 1.8x speed-up to a threshold of exactly 2)
MIN_FREE_CPUS = 1.8


def processes_pay_off(sequential_s: float, workers: int, cpus: float, start_s: float | None = None) -> bool:
    """The rule of `incubate_all(parallel=None)`: worker processes are used when the time they save
    exceeds the time they take to start.

    `cpus` are the CPUs free for them (usable ones less those other jobs keep busy; may be
    fractional). `w = min(workers, cpus)` processes make the K incubations take about
    `sequential_s / w`, so they save `sequential_s (1 - 1/w)`; starting them costs `start_s`
    (default `WORKER_START_S` per worker: each imports PyTorch and builds its first optimizer while
    they share the cores). Fewer than `MIN_FREE_CPUS` free CPUs never pay off: workers that
    time-share a core with other jobs are slowed by them unpredictably (0.72x measured under load).
    """
    w = min(workers, cpus)
    start = WORKER_START_S * workers if start_s is None else start_s
    return w >= MIN_FREE_CPUS and sequential_s * (1 - 1 / w) > start


class OtherLoad:
    """CPUs kept busy by other processes while the block runs: the whole machine's busy CPU time
    (steal included) less this process's, over the wall-clock (psutil; `cpus` is 0 until it exits)."""

    def __enter__(self) -> OtherLoad:
        self.cpus, self._start = 0.0, self._sample()
        return self

    def __exit__(self, *exc: object) -> None:
        (wall, machine, own), (wall0, machine0, own0) = self._sample(), self._start
        self.cpus = max(0.0, ((machine - machine0) - (own - own0)) / max(wall - wall0, 1e-9))

    @staticmethod
    def _sample() -> tuple[float, float, float]:
        import psutil

        times, own = psutil.cpu_times(), psutil.Process().cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        return time.perf_counter(), sum(times) - idle - getattr(times, "guest", 0.0), own.user + own.system


def estimate_sequential_s(
    meta_stages: Sequence[nn.Module],
    target_stages: Sequence[nn.Module],
    data: Dataset,
    config: IncubationConfig,
    train: TrainConfig,
    min_s: float = 0.5,
) -> float:
    """Estimated seconds of the K incubations one after the other in this process:
    K x `incubation_steps` x one optimizer step of hybrid 0 on one batch (the fastest after a
    warm-up; 4 steps, more until they took `min_s` seconds, at most 100; `config.threads` threads;
    on a copy, nothing is trained)."""
    stage = copy.deepcopy(target_stages[0])
    hybrid = build_hybrid(meta_stages, stage, 0)
    optimizer = make_optimizer(stage.parameters(), train)
    x, y = data.train.x[: train.batch_size], data.train.y[: train.batch_size]
    times: list[float] = []
    with torch_threads(config.threads):
        while len(times) < 4 or (sum(times) < min_s and len(times) < 100):
            start = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            F.cross_entropy(hybrid(x), y).backward()
            optimizer.step()
            times.append(time.perf_counter() - start)
    return len(target_stages) * config.incubation_steps * min(times[1:])


def _requested_mode(parallel: bool) -> str:
    """The mode `parallel=True` or `False` asks for."""
    if not parallel:
        return "sequential"
    return "ranks" if distributed.world_size() > 1 else "processes"


def _results(jobs: list[tuple], mode: str, workers: int) -> Iterator[Result]:
    """The jobs' results, each as it becomes available."""
    if mode == "processes":
        yield from _incubate_in_processes(jobs, workers)
    elif mode == "ranks":
        yield from _incubate_on_ranks(jobs)
    else:
        yield from map(_incubation_job, jobs)


def _incubate_on_ranks(jobs: list[tuple]) -> list[Result]:
    """Rank r runs jobs r, r + world, ...; every rank receives all results (gloo on CPU, NCCL on GPU)."""
    import torch.distributed as dist

    if not dist.is_initialized():
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if gpus:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")) % gpus)
        # NCCL needs one GPU per rank; more ranks than GPUs (or none) talk through gloo
        dist.init_process_group("nccl" if gpus >= distributed.world_size() else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    with distributed.each_rank_alone():  # each rank trains stages of its own: no data-parallel fit
        mine = [_incubation_job(job) for job in jobs[rank::world]]
    gathered: list = [None] * world
    dist.all_gather_object(gathered, mine)
    return [result for part in gathered for result in part]


# --------------------------------------------------------------------------- the method


class DeepIncubation:
    """Meta pretraining, incubation of each stage, assembly and fine-tuning for one (meta, target).

    `meta` and `target` are `BlockModel`s (or `StagedModel`s) cut into `config.stages` stages with
    the same interfaces (checked on a probe input of `input_shape`). `target` keeps its initial
    weights: incubation trains copies of its stages, and `train_e2e` starts from the same weights.
    `train` (default `paper_train()`) is the base of every phase's `fit` (see `fit_steps`).
    """

    def __init__(
        self,
        meta: nn.Module,
        target: nn.Module,
        input_shape: Sequence[int],
        config: IncubationConfig | None = None,
        train: TrainConfig | None = None,
    ) -> None:
        check_type("meta", meta, nn.Module, owner="DeepIncubation", hint="pass the meta model (an nn.Module)")
        check_type(
            "target", target, nn.Module, owner="DeepIncubation", hint="pass the target model (an nn.Module)"
        )
        check_shape("input_shape", input_shape, owner="DeepIncubation")
        check_type(
            "config",
            config,
            IncubationConfig,
            owner="DeepIncubation",
            optional=True,
            hint="pass an IncubationConfig(...)",
        )
        check_type(
            "train",
            train,
            TrainConfig,
            owner="DeepIncubation",
            optional=True,
            hint="pass a TrainConfig(...), e.g. incubation.paper_train()",
        )
        self.config, self.train = config or IncubationConfig(), train or paper_train()
        self.config.check_lr(self.train)
        self.meta, self.target = meta, target
        self.meta_stages = split_stages(meta, self.config.stages, "the meta model")
        self.target_stages = split_stages(target, self.config.stages, "the target")
        check_compatible(self.meta_stages, self.target_stages, input_shape)
        self.incubated: dict[int, StageState] = {}
        self.histories: dict[int, History] = {}

    @property
    def num_stages(self) -> int:
        return self.config.stages

    def pretrain_meta(self, data: Dataset) -> History:
        """Phase 1: train the meta model end to end for `config.meta_steps` steps."""
        return self._fit(self.meta, data, self.config.meta_steps, "meta model")

    def hybrid(self, index: int) -> StagedModel:
        """The hybrid of incubation `index`, with a fresh copy of the initial target stage."""
        self._check_index(index)
        return build_hybrid(self.meta_stages, copy.deepcopy(self.target_stages[index]), index)

    def incubate(self, index: int, data: Dataset, hooks: Iterable[Hook] = ()) -> History:
        """Phase 2 for one stage: incubate a copy of initial target stage `index`; keep its weights."""
        self._check_index(index)
        stage = copy.deepcopy(self.target_stages[index])
        history = incubate_stage(self.meta_stages, stage, index, data, self.config, self.train, hooks)
        self._keep(index, _cpu_state(stage), history)
        return history

    def incubate_all(
        self, data: Dataset, parallel: bool | None = None, keep_workers: bool = False
    ) -> dict[int, History]:
        """Phase 2 for every stage; each stage is kept in `incubated` as soon as it finishes.

        `parallel=True`: across `torchrun` ranks when launched that way, else in `config.workers`
        spawned processes; `False`: one after the other in this process; `None`: as `parallel_mode`
        decides. `keep_workers=True` keeps the worker processes for the next call, which then pays
        no start-up (`close_worker_pools()` stops them); by default they stop at the end. Ctrl-C
        terminates the workers and keeps the stages that finished. When a worker dies (killed for
        memory, say), the stages not yet finished run in this process.
        """
        mode = self.parallel_mode(data) if parallel is None else _requested_mode(parallel)
        meta_stages = [copy.deepcopy(s).cpu() for s in self.meta_stages]
        jobs = [
            (meta_stages, copy.deepcopy(stage).cpu(), i, data, self.config, self.train)
            for i, stage in enumerate(self.target_stages)
        ]
        try:
            self._run(jobs, mode)
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
                [_on_cpu(s) for s in self.meta_stages],
                [_on_cpu(s) for s in self.target_stages],
                data,
                self.config,
                self.train,
            )
        cpus, start = max(1.0, usable_cpus() - load.cpus), worker_start_s(workers)
        if processes_pay_off(estimate, workers, cpus, start):
            return "processes"
        measured = (
            "workers kept from this session's last run"
            if workers in _pools
            else "as measured in this session"
            if workers in _measured_start_s
            else "estimated"
        )
        print(
            f"Incubating one stage after the other in this process: {workers} worker processes on the "
            f"{cpus:.1f} CPU(s) that other jobs leave free would save at most "
            f"{estimate * (1 - 1 / max(1.0, min(workers, cpus))):.1f} s of the estimated {estimate:.1f} s "
            f"but take about {start:.1f} s to start ({measured}; parallel=True forces them).",
            flush=True,
        )
        return "sequential"

    def _run(self, jobs: list[tuple], mode: str) -> None:
        """Run `jobs` (`mode`: "sequential", "processes" or "ranks"), keeping each result as it arrives."""
        done: list[int] = []
        try:
            with contextlib.closing(_results(jobs, mode, self.config.workers)) as results:
                for index, state, history in results:
                    if history.interrupted:
                        raise KeyboardInterrupt
                    done.append(index)
                    self._keep(index, state, history)
        except KeyboardInterrupt:
            report_interrupt("stages", done, [job[2] for job in jobs if job[2] not in done])
        except BrokenProcessPool as err:
            left = [job for job in jobs if job[2] not in done]
            print(
                f"A worker process died ({err}): incubating stages {[job[2] for job in left]} in this "
                "process instead.",
                flush=True,
            )
            self._run(left, "sequential")

    def assemble(self) -> nn.Module:
        """Phase 3a: a copy of the target whose stages are the incubated ones (on the CPU)."""
        missing = [i for i in range(self.num_stages) if i not in self.incubated]
        if missing:
            raise ValueError(
                f"stage {missing[0]} has not been incubated yet: call incubate({missing[0]}) "
                "or incubate_all() first"
            )
        model = copy.deepcopy(self.target).cpu()
        for i, stage in enumerate(split_stages(model, self.num_stages)):
            stage.load_state_dict(self.incubated[i])
        return model

    def finetune(self, model: nn.Module, data: Dataset) -> History:
        """Phase 3b: fine-tune the assembled `model` end to end for `config.finetune_steps` steps."""
        return self._fit(model, data, self.config.finetune_steps, "fine-tune", self.config.finetune_grad_clip)

    def train_e2e(self, data: Dataset) -> tuple[nn.Module, History]:
        """The baseline: the initial target trained end to end for `incubation_steps + finetune_steps`
        steps, i.e. as many updates of every target block as incubation plus fine-tuning give it."""
        model = copy.deepcopy(self.target)
        steps = self.config.incubation_steps + self.config.finetune_steps
        return model, self._fit(model, data, steps, "E2E")

    def _fit(
        self, model: nn.Module, data: Dataset, steps: int, desc: str, grad_clip: float | None = None
    ) -> History:
        return fit_steps(model, data, self.train, steps, self.config.min_lr, desc, grad_clip=grad_clip)

    def _check_index(self, index: int) -> None:
        if not 0 <= index < self.num_stages:
            raise ValueError(f"stage index {index} must lie in [0, {self.num_stages - 1}]")

    def _keep(self, index: int, state: StageState, history: History) -> None:
        self.incubated[index], self.histories[index] = state, history


# --------------------------------------------------------------------------- models, pipeline, timing


def make_pair(
    kind: str,
    input_shape: Sequence[int],
    num_classes: int = 10,
    width: int = 128,
    blocks_per_stage: int = 3,
    stages: int = 4,
    seed: int = 0,
) -> tuple[BlockModel, BlockModel]:
    """`(meta, target)`: the same architecture with 1 and `blocks_per_stage` blocks per stage.

    `kind`: `"resmlp"` (`ResidualMLP` of `width`) or `"vit"` (`TinyViT` with `dim=width`).
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}: choose one of {MODEL_KINDS}")
    if blocks_per_stage < 1:
        raise ValueError(f"blocks_per_stage={blocks_per_stage} must be >= 1")

    def build(depth: int) -> BlockModel:
        if kind == "resmlp":
            return ResidualMLP(input_shape, width=width, depth=depth, num_classes=num_classes)
        c, h = input_shape[0], input_shape[1]
        return TinyViT(image_size=h, in_channels=c, num_classes=num_classes, dim=width, depth=depth)

    torch.manual_seed(seed)
    meta = build(stages)
    return meta, build(stages * blocks_per_stage)


def low_data(data: Dataset, fraction: float, seed: int = 0) -> Dataset:
    """The same dataset with a seeded `fraction` of its training split (validation and test kept)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction={fraction} must lie in (0, 1]")
    return replace(data, train=data.train.subset(max(1, round(fraction * len(data.train))), seed))


def train_incubation(
    model: nn.Module,
    data: Dataset,
    config: IncubationConfig | None = None,
    train: TrainConfig | None = None,
    *,
    meta: nn.Module,
    parallel: bool | None = None,
) -> tuple[nn.Module | None, DeepIncubation]:
    """Deep Incubation of the target `model` with the small `meta` model: every phase through `fit`.

    Pretrains `meta`, incubates each stage (`parallel` as in `DeepIncubation.incubate_all`),
    assembles and fine-tunes. `config` holds the method's numbers (stages, steps per phase,
    `min_lr`); `train` (default `paper_train()`) is the base of every phase's `fit` (see `fit_steps`).
    `model` keeps its initial weights. Returns the fine-tuned assembled model (None when Ctrl-C stopped
    the meta pretraining or an incubation) and the `DeepIncubation` that holds the phases' histories and
    stages.
    """
    check_type(
        "data", data, Dataset, owner="train_incubation", hint="pass a Dataset, e.g. ml.load_dataset('digits')"
    )
    inc = DeepIncubation(meta, model, data.input_shape, config, train)
    if inc.pretrain_meta(data).interrupted:
        return None, inc
    inc.incubate_all(data, parallel=parallel)
    if len(inc.incubated) < inc.num_stages:
        return None, inc
    assembled = inc.assemble()
    inc.finetune(assembled, data)
    return assembled, inc


def incubation_vs_e2e(
    meta: nn.Module,
    target: nn.Module,
    data: Dataset,
    config: IncubationConfig | None = None,
    train: TrainConfig | None = None,
    parallel: bool | None = None,
) -> dict[str, float]:
    """All phases, then the E2E baseline at the same budget: test accuracies of each model."""
    inc = DeepIncubation(meta, target, data.input_shape, config, train)
    inc.pretrain_meta(data)
    inc.incubate_all(data, parallel=parallel)
    model = inc.assemble()
    assembled = evaluate(model, data)["acc"]
    inc.finetune(model, data)
    e2e_model, _ = inc.train_e2e(data)
    return {
        "meta": evaluate(inc.meta, data)["acc"],
        "assembled": assembled,
        "fine-tuned": evaluate(model, data)["acc"],
        "E2E": evaluate(e2e_model, data)["acc"],
    }


def same_weights(a: dict[int, StageState], b: dict[int, StageState]) -> bool:
    """True when two sets of stage weights are bit-identical."""
    return a.keys() == b.keys() and all(
        a[i].keys() == b[i].keys() and all(torch.equal(a[i][k], b[i][k]) for k in a[i]) for i in a
    )


def time_incubation(
    inc: DeepIncubation, data: Dataset, parallel: bool | None = None, keep_workers: bool = False
) -> dict[str, float | bool | str]:
    """Wall-clock of `incubate_all` sequential, then with `parallel` (default: as `parallel_mode` decides).

    Both use `config.threads` threads per incubation; `identical` says whether they gave
    bit-identical stage weights; `mode` says how the second run ran ("processes", "ranks" or
    "sequential"). The second run's weights and histories are kept; `keep_workers` as in
    `incubate_all`.
    """
    mode = inc.parallel_mode(data) if parallel is None else _requested_mode(parallel)
    start = time.perf_counter()
    inc.incubate_all(data, parallel=False)
    sequential, states = time.perf_counter() - start, dict(inc.incubated)
    start = time.perf_counter()
    inc.incubate_all(data, parallel=mode != "sequential", keep_workers=keep_workers)
    parallel_s = time.perf_counter() - start
    return {
        "sequential_s": sequential,
        "parallel_s": parallel_s,
        "speedup": sequential / parallel_s,
        "identical": same_weights(states, inc.incubated),
        "mode": mode,
    }


# --------------------------------------------------------------------------- gradient flow


def stage_gradients(hybrid: StagedModel, batch: tuple[torch.Tensor, torch.Tensor]) -> dict[str, list[float]]:
    """One backward pass of the cross-entropy through `hybrid`; per stage:

    - `output_grad`: norm of the gradient reaching the stage's output (0 when none flows there),
    - `weight_grad`: norm of the gradient on the stage's parameters (0 for frozen stages).
    """
    x, y = batch
    device = next(hybrid.parameters()).device
    hybrid.zero_grad(set_to_none=True)
    outputs, h = [], x.to(device)
    for stage in hybrid.stages:
        h = stage(h)
        if h.requires_grad:
            h.retain_grad()
        outputs.append(h)
    F.cross_entropy(h.float(), y.to(device)).backward()
    output_grad = [float(o.grad.norm()) if o.grad is not None else 0.0 for o in outputs]
    weight_grad = [
        math.sqrt(sum(float(p.grad.norm()) ** 2 for p in s.parameters() if p.grad is not None))
        for s in hybrid.stages
    ]
    hybrid.zero_grad(set_to_none=True)
    return {"output_grad": output_grad, "weight_grad": weight_grad}


# --------------------------------------------------------------------------- pictures

_META_COLOR, _TARGET_COLOR = "#b8c4d6", "#f2a65a"


def plot_hybrids(num_stages: int = 4):
    """The meta model, the K hybrids and the assembled target as rows of stage boxes."""
    rows = [("meta model (pretrained)", [False] * num_stages)]
    rows += [
        (f"hybrid {i}: incubate stage {i}", [j == i for j in range(num_stages)]) for i in range(num_stages)
    ]
    rows += [("assembled target", [True] * num_stages)]
    fig, ax = plt.subplots(figsize=(2.0 + 1.6 * num_stages, 0.55 * len(rows) + 0.6))
    for r, (label, is_target) in enumerate(rows):
        y = len(rows) - 1 - r
        ax.text(-0.15, y, label, ha="right", va="center", fontsize=9)
        for j, target in enumerate(is_target):
            width = 1.3 if target else 0.6
            color = _TARGET_COLOR if target else _META_COLOR
            ax.add_patch(plt.Rectangle((j * 1.5, y - 0.3), width, 0.6, color=color))
            text = f"target {j}" if target else f"meta {j}"
            ax.text(j * 1.5 + width / 2, y, text, ha="center", va="center", fontsize=8)
    ax.set_xlim(-0.2, 1.5 * num_stages)
    ax.set_ylim(-0.6, len(rows) - 0.4)
    ax.axis("off")
    ax.set_title(
        "grey: meta stage (frozen, 1 block) · orange: target stage (trained, several blocks)", fontsize=9
    )
    fig.tight_layout()
    return fig


def plot_stage_gradients(grads: dict[str, list[float]], index: int):
    """Per stage of hybrid `index`: the gradient reaching its output, and the gradient on its weights."""
    k = len(grads["output_grad"])
    names = [f"target {j}" if j == index else f"meta {j}" for j in range(k)]
    colors = [_TARGET_COLOR if j == index else _META_COLOR for j in range(k)]
    fig, axes = plt.subplots(1, 2, figsize=(9, 3))
    titles = {
        "output_grad": "gradient reaching the stage output",
        "weight_grad": "gradient on the stage weights",
    }
    for ax, (key, title) in zip(axes, titles.items(), strict=True):
        bars = ax.bar(names, grads[key], color=colors)
        ax.bar_label(bars, labels=["0" if g == 0 else f"{g:.2g}" for g in grads[key]], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("norm")
    fig.suptitle(f"hybrid {index}: one backward pass of the task loss", fontsize=10)
    fig.tight_layout()
    return fig


def plot_incubation(histories: dict[int, History], meta_val_acc: float | None = None):
    """Validation accuracy of each hybrid during its incubation (one curve per stage), and the meta
    model's validation accuracy `meta_val_acc` as a dashed line (validation only: no test values)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for i in sorted(histories):
        rows = [r for r in histories[i].epochs if "val_acc" in r]
        ax.plot([r["step"] for r in rows], [r["val_acc"] for r in rows], label=f"incubating stage {i}")
    if meta_val_acc is not None:
        ax.axhline(meta_val_acc, color="grey", ls="--", label="meta model (val)")
    ax.set_xlabel("incubation step")
    ax.set_ylabel("hybrid val accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_budget_curves(e2e: History, finetune: History, incubation_steps: int, assembled_val_acc: float):
    """Validation accuracy against updates of every target block: E2E vs incubation + fine-tuning,
    which starts at the assembled model's validation accuracy `assembled_val_acc`."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    e2e_rows = [r for r in e2e.epochs if "val_acc" in r]
    ax.plot([r["step"] for r in e2e_rows], [r["val_acc"] for r in e2e_rows], label="E2E")
    ft_rows = [r for r in finetune.epochs if "val_acc" in r]
    ax.plot(
        [incubation_steps] + [incubation_steps + r["step"] for r in ft_rows],
        [assembled_val_acc] + [r["val_acc"] for r in ft_rows],
        "o-",
        ms=3,
        label="assembled, then fine-tuned",
    )
    ax.axvspan(
        0, incubation_steps, color=_TARGET_COLOR, alpha=0.15, label="incubation (each stage separately)"
    )
    ax.set_xlabel("updates of every target block")
    ax.set_ylabel("val accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# --------------------------------------------------------------------------- demo (torchrun)


def demo_problem(steps: int = 30, seed: int = 0) -> tuple[DeepIncubation, Dataset]:
    """A small incubation on the digits, meta model already pretrained (1 thread, deterministic)."""
    data = load_dataset("digits", seed=seed, verbose=False)
    meta, target = make_pair(
        "resmlp", data.input_shape, data.num_classes, width=32, blocks_per_stage=2, seed=seed
    )
    config = IncubationConfig(meta_steps=steps, incubation_steps=steps, finetune_steps=steps)
    inc = DeepIncubation(meta, target, data.input_shape, config, paper_train(lr=2e-3, seed=seed))
    # every rank pretrains the same meta model in its own process, as the single-process demo does
    with torch_threads(config.threads), distributed.each_rank_alone():
        inc.pretrain_meta(data)
    return inc, data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Deep Incubation demo: incubate the 4 stages of a "
        "residual MLP on the digits in parallel and save the assembled weights."
    )
    parser.add_argument("--demo", action="store_true", help="run the demo (the only mode)")
    parser.add_argument("--out", required=True, help="where rank 0 saves the assembled state dict")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sequential", action="store_true", help="incubate one stage after the other")
    args = parser.parse_args(argv)
    if not args.demo:
        parser.error("pass --demo")
    inc, data = demo_problem(args.steps, args.seed)
    inc.incubate_all(data, parallel=not args.sequential)
    if int(os.environ.get("RANK", "0")) == 0:
        torch.save(inc.assemble().state_dict(), args.out)
        print(f"saved the assembled model to {args.out} (world size {distributed.world_size()})")
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
