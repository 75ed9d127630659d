"""The worker processes of `incubate_all(parallel=True)`: a pool of spawned processes kept between
calls, the results as each worker finishes, and what starting the workers costs."""

from __future__ import annotations

import atexit
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed

import torch
import torch.nn as nn

from ..train import TrainConfig, make_optimizer
from .hybrid import Job, Result, incubation_job

# wall-clock to start one spawned worker until it can train: a fresh Python importing PyTorch and
# modlearn (2.8-3.7 s), then its first optimizer, which imports torch._dynamo (1.9-2.9 s); two
# workers starting together on the 2-core development machine were ready after about 10 s
WORKER_START_S = 5.0
# what handing a kept pool the jobs (the meta model and the data, pickled) and collecting the stages costs
POOL_DISPATCH_S = 0.5
# the start-up of `workers` processes as last measured in this Python session (see `worker_start_s`)
_measured_start_s: dict[int, float] = {}
# the worker pools kept between calls, by number of workers (see `_worker_pool`)
_pools: dict[int, ProcessPoolExecutor] = {}


def _warm_up_worker() -> None:
    """Worker initializer: pay a fresh process's one-time costs before its first job starts.

    Building the first optimizer imports `torch._dynamo` (seconds); this one, on a throwaway
    parameter, trains nothing, and `fit` seeds every incubation, so the stage weights stay
    bit-identical to the sequential run's. The first job thus begins when the worker is ready."""
    make_optimizer([nn.Parameter(torch.zeros(1))], TrainConfig())


def _timed_job(job: Job) -> tuple[float, Result]:
    """`incubation_job`, with the wall-clock time (`time.time()`) at which the worker began it."""
    return time.time(), incubation_job(job)


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


def incubate_in_processes(jobs: list[Job], workers: int) -> Iterator[Result]:
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


def worker_start_s(workers: int) -> float:
    """Seconds until `workers` spawned processes all train: `POOL_DISPATCH_S` while this session keeps
    a pool of that size; else as measured when this session last started one, else `WORKER_START_S`
    per worker."""
    if workers in _pools:
        return POOL_DISPATCH_S
    return _measured_start_s.get(workers, WORKER_START_S * workers)


def start_up_source(workers: int) -> str:
    """Where `worker_start_s(workers)` comes from, in words."""
    if workers in _pools:
        return "workers kept from this session's last run"
    return "as measured in this session" if workers in _measured_start_s else "estimated"
