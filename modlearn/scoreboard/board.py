"""The scoreboard itself: train every method on the same model and seeds (`train_all`), then measure
every trained model with every metric and what its training cost (`score`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch.nn as nn

from ..api import Run
from ..data import Dataset
from ..train import fit
from ..validate import check_choice, check_int, check_type
from .methods import ACTIVATION_PROBES, NAMES, SCOREBOARD_METHODS, fresh_model, plain_step_bytes, step_budget
from .metrics import COSTS, SCOREBOARD_METRICS


@dataclass
class BoardRun:
    """One training run of `train_all`: the method's `Run`, the activation bytes one of its training
    steps holds at its peak (`ACTIVATION_PROBES`), the method's name and the seed."""

    run: Run
    activation_bytes: int
    method: str
    seed: int

    @property
    def model(self) -> nn.Module:
        """The trained model the metrics read (`run.model`)."""
        return self.run.model

    @property
    def seconds(self) -> float:
        """The training wall-clock (`run.seconds`)."""
        return self.run.seconds


def _checked_names(
    name: str, given: Sequence[str] | None, known: Mapping[str, object], owner: str
) -> list[str]:
    """`given` (default: every key of `known`), each checked against `known`'s keys."""
    if given is None:
        return list(known)
    check_type(
        name, given, (list, tuple), owner=owner, hint=f"pass a list of names such as {list(known)[:2]}"
    )
    return [check_choice(name, entry, list(known), owner=owner) for entry in given]


def train_all(
    model_factory: Callable[[], nn.Module],
    data: Dataset,
    steps: int,
    seeds: Sequence[int] = (0, 1, 2),
    methods: Sequence[str] | None = None,
    lr: float = 3e-3,
    verbose: bool = False,
) -> dict[str, BoardRun]:
    """Train `model_factory()` (seeded, `fresh_model`) with each method in `methods` (default: all of
    `SCOREBOARD_METHODS`) for `steps` optimizer steps per seed (`step_budget(steps, seed, lr)`), after a
    short untimed warm-up run, so that the first method's wall-clock holds no one-time start-up.
    Keys are `"<method>/<seed>"`, e.g. `"dgl/1"`; `verbose` prints a line per run."""
    owner = "train_all"
    check_type("data", data, Dataset, owner=owner, hint="pass a Dataset, e.g. ml.load_dataset('digits')")
    steps = check_int("steps", steps, 1, owner=owner)
    seeds = [check_int("seeds", seed, 0, owner=owner) for seed in seeds]
    names = _checked_names("methods", methods, SCOREBOARD_METHODS, owner)
    fit(model_factory(), data, step_budget(min(steps, 20), seeds[0], lr))  # warm-up, untimed
    runs = {}
    for method in names:
        probe = ACTIVATION_PROBES.get(method, plain_step_bytes)
        for seed in seeds:
            train = step_budget(steps, seed, lr)
            run = SCOREBOARD_METHODS[method](fresh_model(model_factory, seed), data, train)
            runs[f"{method}/{seed}"] = BoardRun(run, probe(run, data, train), method, seed)
            if verbose:
                print(f"{NAMES.get(method, method):>22} seed {seed}: {run.seconds:5.1f} s", flush=True)
    return runs


def score(
    runs: Mapping[str, BoardRun | nn.Module], data: Dataset, metrics: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """`{name: {metric: value}}` for every run (or bare model) and every metric in `metrics`
    (default: all of `SCOREBOARD_METRICS`, then `COSTS` for `BoardRun` runs)."""
    check_type("data", data, Dataset, owner="score", hint="pass a Dataset, e.g. ml.load_dataset('digits')")
    names = _checked_names("metrics", metrics, SCOREBOARD_METRICS, "score")
    table = {}
    for label, run in runs.items():
        model = run.model if isinstance(run, BoardRun) else run
        row = {metric: float(SCOREBOARD_METRICS[metric].measure(model, data)) for metric in names}
        if isinstance(run, BoardRun) and metrics is None:
            row |= {cost: float(metric.measure(run, data)) for cost, metric in COSTS.items()}
        table[label] = row
    return table
