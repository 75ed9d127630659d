"""When worker processes pay off: the rule (`processes_pay_off`), the CPUs other processes keep busy
(`OtherLoad`), and the estimated time of the K incubations one after the other (`estimate_sequential_s`)."""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence

import torch.nn as nn
import torch.nn.functional as F

from ..data import Dataset
from ..train import TrainConfig, make_optimizer
from .config import IncubationConfig
from .hybrid import build_hybrid, torch_threads
from .pool import WORKER_START_S

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
