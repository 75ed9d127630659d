"""The Method API: what every `train_<method>` takes and what it returns.

Every method of the series has one entry point of one shape::

    run = train_<method>(model, data, config=None, train=None, *, hooks=())

- `model`: your network. **It is never changed**: the method trains a copy (or a network built from
  it: a masked copy, an assembled target) and returns that as `run.model`. Re-running a cell starts
  from the same weights again.
- `data`: a `Dataset` (`ml.load_dataset(...)`), or what the method documents (DCM: samples per variable).
- `config`: the method's own numbers, a dataclass carrying its paper's defaults (`None`: those defaults).
- `train`: the loop's `TrainConfig` (`None`: the method's default), given to every `fit` it runs.
- `hooks`: `Hook`s (or callables `f(state)`, called after each step) given to every `fit` it runs.

It returns one `Run` (below), whatever the method: the trained model, the history of the loop,
every phase's history, the wall-clock, and the method's own results in `run.extras`
(co-clusters, masks, stage models, ...), a dataclass typed per method.

A learner's own `nn.Module` is accepted wherever the paper allows: `block_model(model, owner)`
converts a plain `nn.Sequential` of Linear/Conv layers and activations with
`BlockModel.from_sequential`; where a method needs a special model, `ModelContractError` says what
to pass and names the converter, in one wording for every method.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import torch.nn as nn

from .models import BlockModel
from .train import History, Hook, TrainState, as_hook

Extras = TypeVar("Extras")


@dataclass
class Run(Generic[Extras]):
    """What every `train_<method>` returns.

    - `model`: the trained network, a new object (the model you passed is left as it was).
    - `history`: the `History` of the loop's main run (the last phase for methods with several).
    - `histories`: every `fit` the method ran, by phase or module name, in order
      (one entry, `"train"`, for a single-phase method).
    - `extras`: the method's own results, a dataclass of the method (e.g. `ClusterExtras.clusters`).
    - `method`: the method's name; `seconds`: the wall-clock of the whole call.
    """

    model: nn.Module
    history: History
    extras: Extras
    histories: dict[str, History] = field(default_factory=dict)
    method: str = ""
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if not self.histories:
            self.histories = {"train": self.history}

    @property
    def interrupted(self) -> bool:
        """True when Ctrl-C (or a signal) stopped any phase of the run."""
        return any(h.interrupted for h in self.histories.values())

    @property
    def steps(self) -> int:
        """Optimizer steps of every phase together."""
        return sum(h.num_steps for h in self.histories.values())


class Timer:
    """`with Timer() as t: ...`; then `t.seconds` is the wall-clock of the block."""

    def __enter__(self) -> Timer:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc: Any) -> None:
        self.seconds = time.perf_counter() - self.start


# --------------------------------------------------------------------------- the model contract


class ModelContractError(ValueError):
    """A model a method cannot train; the message says what to pass and how to convert it."""


def contract_error(owner: str, model: Any, needs: str, fix: str) -> ModelContractError:
    """The one wording of every model-contract error: `owner(model=<type>): needs ...; fix`."""
    return ModelContractError(f"{owner}(model={type(model).__name__}): needs {needs}; {fix}")


def block_model(model: Any, owner: str) -> BlockModel:
    """`model` as a `BlockModel` (blocks applied in order, then a head): a `BlockModel` as it is, a plain
    `nn.Sequential` converted by `BlockModel.from_sequential` (it shares the Sequential's parameters).

    Raises `ModelContractError` for anything else, naming what to pass.
    """
    if isinstance(model, BlockModel):
        return model
    if isinstance(model, nn.Sequential):
        try:
            return BlockModel.from_sequential(model)
        except ValueError as err:
            raise contract_error(
                owner, model, "a Sequential it can cut into blocks and a head", str(err)
            ) from err
    raise contract_error(
        owner,
        model,
        "a network made of blocks and a head",
        "pass an nn.Sequential of Linear/Conv2d layers and activations (converted with "
        "BlockModel.from_sequential), a model of modlearn.models (ml.make_model('mlp', data.input_shape)), "
        "or a subclass of BlockModel with `blocks` (nn.ModuleList) and `head`",
    )


def trainable_copy(model: nn.Module) -> nn.Module:
    """A deep copy of `model`, the network a method trains (the caller's model is never changed)."""
    return copy.deepcopy(model)


# --------------------------------------------------------------------------- hooks


def check_hooks(hooks: Iterable[Hook | Callable[[TrainState], None]], owner: str) -> list[Hook]:
    """`hooks` as a list of `Hook`s (a callable `f(state)` becomes a step-end hook), checked before any work.

    Raises a `ValueError` naming the first entry that is neither a `Hook` nor callable.
    """
    if isinstance(hooks, Hook) or callable(hooks):
        hooks = [hooks]
    if isinstance(hooks, (str, bytes, Mapping)) or not isinstance(hooks, Iterable):
        raise ValueError(
            f"{owner}(hooks={hooks!r}): hooks must be a list of Hook objects or functions f(state); "
            "pass e.g. hooks=[ml.Hook()] or hooks=()"
        )
    checked = []
    for i, hook in enumerate(hooks):
        if not isinstance(hook, Hook) and not callable(hook):
            raise ValueError(
                f"{owner}(hooks[{i}]={hook!r}): a {type(hook).__name__} is neither a Hook nor a function "
                "f(state); pass a subclass of ml.Hook, or a function called after each step"
            )
        checked.append(as_hook(hook))
    return checked
