"""`train_local`: one entry point for E2E, greedy, DGL, the kernel proxy and Forward-Forward, each a few
calls of the one loop, `fit` (once for all modules, or once per module)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

import torch.nn as nn

from ..api import Run, Timer, block_model, check_hooks, trainable_copy
from ..data import Dataset, Split
from ..interrupts import report_interrupt
from ..models import BlockModel
from ..train import History, Hook, TrainConfig, TrainState, fit, predict
from ..validate import check_type
from .config import LocalConfig
from .dgl import DecoupledObjective
from .ff import ForwardForwardNet, ForwardForwardObjective
from .kernel import KernelAlignmentObjective, kernel_classifier, kernel_modules
from .net import LocalNet, local_net

PROBE = "probe"  # E2E's linear probes are the fits "probe 1", "probe 2", ...: they measure, not train
Hooks = Iterable[Hook | Callable[[TrainState], None]]


@dataclass
class LocalExtras:
    """What `train_local` returns in `run.extras`, besides the model and the histories.

    - `config`: the `LocalConfig` it trained with (`mode` is `config.mode`).
    - `net`: the trained model cut into modules with their auxiliary heads (`e2e`: the probes), a
      `LocalNet` sharing `run.model`'s parameters; None for `kernel` and `ff`, which have no heads.
    - `block_model`: the trained copy of your model as a `BlockModel` (blocks, then its own head):
      every mode trains its blocks; `e2e`, `greedy` and `dgl` also its head, and then it computes
      what `run.model` computes. The kernel method and Forward-Forward classify otherwise (`run.model`).
    """

    config: LocalConfig
    net: LocalNet | None
    block_model: BlockModel

    @property
    def mode(self) -> str:
        return self.config.mode


def train_local(
    model: nn.Module,
    data: Dataset,
    config: LocalConfig | None = None,
    train: TrainConfig | None = None,
    *,
    hooks: Hooks = (),
) -> Run[LocalExtras]:
    """Train a copy of `model` (a `BlockModel`, or a plain `nn.Sequential` of Linear/Conv layers and
    activations) with `config.mode`, using `fit` once per module (or once for all); `model` is unchanged.

    - `e2e`: one `fit` of the whole model (`"train"`); then linear probes are fitted on its frozen
      blocks (`"probe 1"` ... `"probe K-1"`) so its per-module accuracy can be compared (`module_accuracies`).
    - `greedy`: for k = 1..K, cache the frozen modules' outputs and `fit` module k + its head
      (`"module k"`); Ctrl-C during module k keeps modules 1..k-1, leaves module k as far as it got,
      skips the rest.
    - `dgl`: one `fit` with `DecoupledObjective` (`"train"`: all modules every step, inputs detached).
    - `kernel`: `fit` all blocks on the kernel-alignment proxy (`"hidden module"`), freeze them, `fit`
      a new output layer on their unit-normalised outputs (`"output layer"`).
    - `ff`: one `fit` with `ForwardForwardObjective` (`"train"`), on an MLP only.

    `run.model` is the network that classifies, `(batch, ...) -> (batch, classes)`: the trained copy of
    `model` (e2e, greedy, dgl), its trained blocks with the unit normalisation and the new output layer
    as head (kernel), or the Forward-Forward goodness classifier over its blocks (ff). `run.history` is
    the `"train"` fit where there is one, else the last. `train` is given to every `fit` (greedy,
    kernel and the probes set its `desc` to their phase; the probes their budget); greedy and kernel
    spend its whole budget (epochs or `max_steps`) on each module. `hooks` reach every `fit`, the
    probes included.
    """
    check_type(
        "data", data, Dataset, owner="train_local", hint="pass a Dataset, e.g. ml.load_dataset('digits')"
    )
    check_type(
        "config", config, LocalConfig, owner="train_local", optional=True, hint="pass a LocalConfig(mode=...)"
    )
    check_type(
        "train", train, TrainConfig, owner="train_local", optional=True, hint="pass a TrainConfig(...)"
    )
    hooks = check_hooks(hooks, "train_local")
    config, train = config or LocalConfig(), train or TrainConfig()
    trained = trainable_copy(model)
    blocks = block_model(trained, "train_local")
    with Timer() as timer:
        histories, classifier, net = _TRAINERS[config.mode](blocks, data, config, train, hooks)
    main = histories.get("train", list(histories.values())[-1])
    return Run(
        trained if classifier is None else classifier,
        main,
        LocalExtras(config, net, blocks),
        histories,
        method="local",
        seconds=timer.seconds,
    )


# A trainer returns every fit's History by name, the classifier when it is not the model, the LocalNet.
Trained = tuple[dict[str, History], nn.Module | None, LocalNet | None]


def _train_e2e(
    model: BlockModel, data: Dataset, config: LocalConfig, train: TrainConfig, hooks: list[Hook]
) -> Trained:
    net = local_net(model, data, config)
    histories = {"train": fit(model, data, train, hooks=hooks)}
    probe = replace(train, epochs=config.probe_epochs if train.epochs else None)
    for k in range(1, len(net.stages)):
        name = f"{PROBE} {k}"
        histories[name] = fit_on_frozen(
            net.prefix(k), net.heads[k - 1], data, replace(probe, desc=name), hooks
        )
    return histories, None, net


def _train_greedy(
    model: BlockModel, data: Dataset, config: LocalConfig, train: TrainConfig, hooks: list[Hook]
) -> Trained:
    net, histories = local_net(model, data, config), {}
    modules = len(net.stages)
    for k, (stage, head) in enumerate(zip(net.stages, net.heads, strict=True)):
        module = replace(train, desc=f"module {k + 1}/{modules}")
        history = fit_on_frozen(net.prefix(k), nn.Sequential(stage, head), data, module, hooks)
        histories[f"module {k + 1}"] = history
        if history.interrupted:
            report_interrupt("modules", list(range(1, k + 1)), list(range(k + 1, modules + 1)))
            break
    return histories, None, net


def _train_dgl(
    model: BlockModel, data: Dataset, config: LocalConfig, train: TrainConfig, hooks: list[Hook]
) -> Trained:
    net = local_net(model, data, config)
    return {"train": fit(net, data, train, objective=DecoupledObjective(), hooks=hooks)}, None, net


def _train_kernel(
    model: BlockModel, data: Dataset, config: LocalConfig, train: TrainConfig, hooks: list[Hook]
) -> Trained:
    hidden, output = kernel_modules(model, data.input_shape, data.num_classes)
    objective = KernelAlignmentObjective(config.kernel_min)
    first = fit(hidden, data, replace(train, desc="hidden module"), objective=objective, hooks=hooks)
    second = fit_on_frozen(hidden, output, data, replace(train, desc="output layer"), hooks)
    return {"hidden module": first, "output layer": second}, kernel_classifier(hidden, output), None


def _train_ff(
    model: BlockModel, data: Dataset, config: LocalConfig, train: TrainConfig, hooks: list[Hook]
) -> Trained:
    ff = ForwardForwardNet(model, data.num_classes, "train_local")
    return (
        {"train": fit(ff, data, train, objective=ForwardForwardObjective(config.ff_theta), hooks=hooks)},
        ff,
        None,
    )


_TRAINERS: dict[str, Callable[..., Trained]] = {
    "e2e": _train_e2e,
    "greedy": _train_greedy,
    "dgl": _train_dgl,
    "kernel": _train_kernel,
    "ff": _train_ff,
}


def fit_on_frozen(
    frozen: nn.Module, trainable: nn.Module, data: Dataset, train: TrainConfig, hooks: Hooks = ()
) -> History:
    """Fully modular step: cache `frozen`'s outputs for the train/val splits, then `fit(trainable)` on them.

    `frozen` is never run in training mode or touched by the optimizer; an empty `frozen` passes
    the inputs through.
    """

    def cached(split: Split) -> Split:
        if not list(frozen.parameters()):
            return split
        return Split(predict(frozen, split.x, train.eval_batch_size), split.y)

    return fit(trainable, cached(data.train), train, val=cached(data.val), hooks=hooks)


def train_modes(
    model: nn.Module,
    data: Dataset,
    modes: Sequence[str],
    train: TrainConfig | None = None,
    *,
    hooks: Hooks = (),
    **config,
) -> dict[str, Run[LocalExtras]]:
    """`{mode: train_local(model, data, LocalConfig(mode, **config), train, hooks=hooks)}`: every mode
    trains its own copy of the same `model` (same initial weights), on the same data."""
    return {mode: train_local(model, data, LocalConfig(mode, **config), train, hooks=hooks) for mode in modes}
