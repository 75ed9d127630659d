"""Environment helpers: seeds, devices, budgets, and the report printed by every notebook.

Introduced in `tutorials/00_tour.ipynb`.
"""

from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import torch

from .results import record
from .validate import check_bool, check_int

T = TypeVar("T")

BUDGETS = ("smoke", "cpu", "gpu")


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices) so a CPU run repeats exactly."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """`"auto"` picks CUDA, then Apple MPS, then the CPU; any other name is checked and returned."""
    if isinstance(device, torch.device):
        return device
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"unknown device {device!r}: use 'auto', 'cpu', 'cuda' or 'mps'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} asked for but CUDA is not available here: use device='auto'")
    return dev


def resolve_budget(budget: str) -> str:
    """The budget a notebook runs at: `MODLEARN_BUDGET` in the environment overrides the argument.

    That lets the tests run every notebook at `smoke` without editing them.
    """
    chosen = os.environ.get("MODLEARN_BUDGET", budget)
    if chosen not in BUDGETS:
        raise ValueError(f"unknown budget {chosen!r}: choose one of {BUDGETS}")
    return chosen


@dataclass
class Setup:
    """What a notebook's setup cell decided: budget, device, seed, torch threads, determinism."""

    budget: str
    device: torch.device
    seed: int
    threads: int = 1
    deterministic: bool = False

    def pick(self, smoke: T, cpu: T, gpu: T | None = None) -> T:
        """Choose a value by budget: `setup.pick(smoke=1, cpu=5, gpu=50)` (gpu defaults to cpu)."""
        return {"smoke": smoke, "cpu": cpu, "gpu": cpu if gpu is None else gpu}[self.budget]


def setup(
    budget: str = "cpu",
    seed: int = 0,
    threads: int | None = None,
    verbose: bool = True,
    deterministic: bool = False,
) -> Setup:
    """One call at the top of every notebook: budget, seed, device, thread cap, figure style.

    Threads default to `MODLEARN_THREADS` in the environment when it is set (the series runner
    sets it for notebooks that share the machine: more threads than cores makes every hand-off
    wait for a time slice), else to the CPUs this process may use, capped at 4 (Binder gives 1-2). The thread
    count is recorded (`torch_threads`), because a seeded CPU run repeats exactly only at the same
    thread count: matrix products and convolutions split their sums across threads, and another
    split rounds differently (measured: 1 vs 2 threads, 20 steps, max weight difference 1e-6 for
    an MLP and 1e-2 for a CNN).

    `deterministic=True` makes a seeded run identical on any machine with the same torch build and
    CPU family, whatever its core count: one torch thread (with `threads` left unset or 1) and
    `torch.use_deterministic_algorithms(True)`, which raises on the few operations that have no
    deterministic kernel. Different CPU instruction sets (AVX2 vs AVX-512) or torch versions can
    still round differently; nothing on the CPU side can promise that.
    """
    seed = check_int("seed", seed, 0, owner="setup")
    threads = check_int("threads", threads, 1, owner="setup", optional=True)
    check_bool("verbose", verbose, owner="setup")
    budget = resolve_budget(budget)
    if deterministic and threads not in (None, 1):
        raise ValueError(
            f"setup(threads={threads}, deterministic=True): a deterministic CPU run uses "
            "one thread; leave threads unset or pass deterministic=False"
        )
    seed_everything(seed)
    torch.set_num_threads(1 if deterministic else threads or default_threads())
    torch.use_deterministic_algorithms(deterministic)
    device = resolve_device("auto")
    _style_figures()
    chosen = Setup(
        budget=budget, device=device, seed=seed, threads=torch.get_num_threads(), deterministic=deterministic
    )
    if verbose:
        print(
            f"budget={budget}  device={device}  seed={seed}  torch threads={chosen.threads}"
            + ("  deterministic" if deterministic else "")
        )
    record("budget", budget)
    record("torch_threads", chosen.threads)
    return chosen


def default_threads() -> int:
    """Torch threads when `setup` is given none: `MODLEARN_THREADS` if set (a whole number >= 1,
    else a ValueError naming it), else the available CPUs capped at 4."""
    chosen = os.environ.get("MODLEARN_THREADS")
    if chosen is None:
        return max(1, min(4, available_cpus()))
    if not chosen.strip().isdigit() or int(chosen) < 1:
        raise ValueError(
            f"MODLEARN_THREADS={chosen!r}: set it to a whole number of torch threads (1 or more), or unset it"
        )
    return int(chosen)


def available_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _style_figures() -> None:
    import matplotlib as mpl

    mpl.rcParams.update(
        {
            "figure.dpi": 100,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.alpha": 0.3,
            "figure.max_open_warning": 0,
        }
    )


def environment_report() -> dict[str, str]:
    """Versions and the device that will train, as a small dict (shown in notebook 00)."""
    import matplotlib
    import sklearn

    device = resolve_device("auto")
    report = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scikit-learn": sklearn.__version__,
        "matplotlib": matplotlib.__version__,
        "device": str(device),
        "cpu threads": str(torch.get_num_threads()),
    }
    try:
        import torchvision

        report["torchvision"] = torchvision.__version__
    except Exception as err:  # torchvision is optional at runtime: digits needs none
        report["torchvision"] = f"not importable ({type(err).__name__})"
    if device.type == "cuda":
        report["gpu"] = torch.cuda.get_device_name(0)
    report["MODLEARN_DATA"] = os.environ.get("MODLEARN_DATA", "(not set)")
    return report
