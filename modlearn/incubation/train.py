"""The entry point `train_incubation` (the Method API), the comparison with E2E at the same budget,
and the timing of sequential against parallel incubation."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace

import torch
import torch.nn as nn

from ..api import Run, Timer, block_model, check_hooks, contract_error, trainable_copy
from ..data import Dataset
from ..models import BlockModel
from ..train import History, Hook, TrainConfig, TrainState, evaluate
from ..validate import check_type
from .config import IncubationConfig
from .hybrid import StageState
from .method import DeepIncubation, requested_mode
from .staged import StagedModel, default_meta, split_stages

OWNER = "train_incubation"


@dataclass
class IncubationExtras:
    """What `train_incubation` returns besides the model.

    - `incubation`: the `DeepIncubation` of the run: the incubated stages' weights (`incubated`), their
      histories, the hybrids (`incubation.hybrid(i)`), `mode` (how the incubations ran);
    - `meta`: the pretrained meta model (a copy: the `meta` passed is not changed).
    """

    incubation: DeepIncubation
    meta: nn.Module


def incubation_target(model: nn.Module, stages: int) -> nn.Module:
    """`model` as a target of `stages` equal stages: a `StagedModel` or a `BlockModel` as it is, a plain
    `nn.Sequential` converted by `BlockModel.from_sequential` (sharing its parameters).

    Raises `ModelContractError` for anything else, and for a body that does not cut into equal stages.
    """
    needs = f"a BlockModel (or StagedModel) whose body cuts into {stages} equal stages"
    fix = (
        "build meta and target with incubation.make_pair(kind, data.input_shape, ...), or pass a BlockModel "
        f"whose blocks are the input embedding then {stages} x n blocks (an nn.Sequential is converted "
        "with BlockModel.from_sequential: each weight layer starts a block, the last one is the head)"
    )
    if not isinstance(model, (StagedModel, BlockModel, nn.Sequential)):
        raise contract_error(OWNER, model, needs, fix)
    target = model if isinstance(model, StagedModel) else block_model(model, OWNER)
    try:
        split_stages(target, stages, "the target")
    except ValueError as err:
        raise contract_error(OWNER, model, f"{needs} ({err})", fix) from err
    return target


def train_incubation(
    model: nn.Module,
    data: Dataset,
    config: IncubationConfig | None = None,
    train: TrainConfig | None = None,
    *,
    hooks: Iterable[Hook | Callable[[TrainState], None]] = (),
    meta: nn.Module | None = None,
    parallel: bool | None = None,
) -> Run[IncubationExtras]:
    """Deep Incubation (Ni et al., ICCV 2023) of the target `model` with the small `meta` model.

    Pretrains a copy of `meta`, incubates each of the target's `config.stages` stages inside it,
    assembles the incubated stages into a copy of the target and fine-tunes it end to end; every phase
    through `fit` (`train`, default `paper_train()`, with each phase's own steps: see `fit_steps`).

    - `model`: the target, a `BlockModel` (blocks[0] the input embedding, then K x n blocks, a head),
      a `StagedModel` of K stages, or an `nn.Sequential` that converts to such a `BlockModel`;
      `x: (batch, *data.input_shape)` -> `(batch, num_classes)`. It is not changed.
    - `meta`: the meta model, with the target's K stage interfaces (`make_pair` builds both). `None`
      builds it from a `BlockModel` target by `make_pair`'s rule (`default_meta`: one block per stage).
    - `parallel`: as in `DeepIncubation.incubate_all` (`None`: worker processes when they pay off).
    - `hooks`: go to every `fit` (meta, each stage, fine-tuning). Worker processes cannot take them:
      with hooks, `parallel=None` incubates in this process and `parallel=True` raises a `ValueError`
      (under `torchrun` each rank runs them on its own stages).

    Returns a `Run`: `model` the fine-tuned assembled target (of the type passed: an `nn.Sequential`
    comes back as one); `histories` `"meta"`, `"stage 0"` ..
    `"stage K-1"` (numbered as the stages, from 0), `"finetune"`; `history` the last of them; `extras`
    an `IncubationExtras`. When Ctrl-C stops a phase, `run.interrupted` is True, `histories` ends with
    the phase it stopped, and `run.model` is the target with what finished: the initial target
    (meta pretraining stopped), the incubated stages in place and the others initial (an incubation
    stopped), or the assembled model fine-tuned until Ctrl-C.
    """
    hooks = check_hooks(hooks, OWNER)
    check_type("data", data, Dataset, owner=OWNER, hint="pass a Dataset, e.g. ml.load_dataset('digits')")
    check_type(
        "config", config, IncubationConfig, owner=OWNER, optional=True, hint="an IncubationConfig(...)"
    )
    config = config or IncubationConfig()
    target = incubation_target(model, config.stages)
    if parallel:
        requested_mode(parallel, hooks)  # refuses hooks that workers would need, before any work
    if meta is None:
        if not isinstance(target, BlockModel):
            raise ValueError(
                f"{OWNER}(model={type(model).__name__}, meta=None): a default meta model is built from a "
                "BlockModel target only; pass meta= (e.g. meta, target = incubation.make_pair(...))"
            )
        meta = default_meta(target, config.stages)
    with Timer() as timer:
        inc = DeepIncubation(meta, target, data.input_shape, config, train)
        histories, assembled = _phases(inc, data, hooks, parallel)
    if isinstance(model, nn.Sequential):  # the learner's Sequential back, with the trained weights
        trained = trainable_copy(model)
        block_model(trained, OWNER).load_state_dict(assembled.state_dict())
        assembled = trained
    return Run(
        model=assembled,
        history=list(histories.values())[-1],
        extras=IncubationExtras(incubation=inc, meta=inc.meta),
        histories=histories,
        method="incubation",
        seconds=timer.seconds,
    )


def _phases(
    inc: DeepIncubation, data: Dataset, hooks: list[Hook], parallel: bool | None
) -> tuple[dict[str, History], nn.Module]:
    """The three phases until the end or Ctrl-C: every fit's history by phase, and the target as trained."""
    histories = {"meta": inc.pretrain_meta(data, hooks)}
    if histories["meta"].interrupted:
        return histories, inc.assemble(partial=True)
    inc.incubate_all(data, parallel=parallel, hooks=hooks)
    stages = {**inc.histories, **inc.unfinished}
    histories.update((f"stage {i}", stages[i]) for i in sorted(stages))
    model = inc.assemble(partial=True)
    if not inc.unfinished:
        histories["finetune"] = inc.finetune(model, data, hooks)
    return histories, model


def incubation_vs_e2e(
    meta: nn.Module,
    target: nn.Module,
    data: Dataset,
    config: IncubationConfig | None = None,
    train: TrainConfig | None = None,
    parallel: bool | None = None,
) -> dict[str, float]:
    """`train_incubation`, then the E2E baseline at the same budget (`DeepIncubation.train_e2e`): the
    test accuracies of the pretrained meta model, the assembled model before fine-tuning, the
    fine-tuned one and E2E. Ctrl-C stops the comparison (raised again after the phase it stopped)."""
    run = train_incubation(target, data, config, train, meta=meta, parallel=parallel)
    if run.interrupted:
        raise KeyboardInterrupt
    inc = run.extras.incubation
    e2e_model, _ = inc.train_e2e(data)
    return {
        "meta": evaluate(run.extras.meta, data)["acc"],
        "assembled": evaluate(inc.assemble(), data)["acc"],
        "fine-tuned": evaluate(run.model, data)["acc"],
        "E2E": evaluate(e2e_model, data)["acc"],
    }


def low_data(data: Dataset, fraction: float, seed: int = 0) -> Dataset:
    """The same dataset with a seeded `fraction` of its training split (validation and test kept)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction={fraction} must lie in (0, 1]")
    return replace(data, train=data.train.subset(max(1, round(fraction * len(data.train))), seed))


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
    mode = inc.parallel_mode(data) if parallel is None else requested_mode(parallel)
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
