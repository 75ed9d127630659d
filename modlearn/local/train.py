"""Training without end-to-end backprop: greedy layer-wise, decoupled greedy (DGL), kernel proxy,
Forward-Forward.

The map (Duan & Principe, "Training Deep Architectures Without End-to-End Backpropagation", 2021/2022):

- **end-to-end (E2E)**: one global forward pass, one loss, one global backward pass;
- **weakly modular**: no global backward pass, but each step still runs a forward pass through
  every module (DGL, Belilovsky et al. 2020; Forward-Forward, Hinton 2022, as trained here);
- **fully modular**: each module is trained on its own and frozen; the next one trains on its
  cached outputs (sequential greedy layer-wise training; the authors' kernel proxy method, kerNET).

A `BlockModel` (`modlearn.models.MLP` or `CNN`) is cut into `K` modules along its `blocks`; module k
gets an auxiliary head, the last module uses the model's own head. Everything trains with the one
loop, `modlearn.train.fit`. Introduced in `tutorials/02_local_training.ipynb`.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import matplotlib.pyplot as plt
import torch
import torch.nn as nn
import torch.nn.functional as F

from .data import Dataset, Split, iterate_batches
from .interrupts import report_interrupt
from .models import MLP, BlockModel, split_blocks
from .train import Batch, CrossEntropy, History, Metrics, Objective, TrainConfig, fit, predict
from .validate import ConfigFields, check_type

MODES = ("e2e", "greedy", "dgl", "kernel", "ff")
HEADS = ("linear", "mlp", "conv")
MODE_NAMES = {
    "e2e": "E2E backprop",
    "greedy": "greedy (sequential)",
    "dgl": "DGL (decoupled)",
    "kernel": "kernel proxy",
    "ff": "Forward-Forward",
}


@dataclass
class LocalConfig:
    """How a model is cut and trained without a global backward pass.

    - `mode`: `"e2e"` (baseline), `"greedy"` (sequential layer-wise, fully modular), `"dgl"`
      (decoupled greedy, Belilovsky, Eickenberg & Oyallon, ICML 2020), `"kernel"` (two-module kernel
      proxy, Duan & Principe; kerNET), `"ff"` (Forward-Forward, Hinton 2022; MLP only).
    - `num_modules`: K, the number of modules (default: one per block); `"kernel"` always has two:
      all blocks (the hidden module), then the head (the output layer).
    - `aux_head`: `"linear"` (the survey's small demo), `"mlp"` (DGL's spatially reduced MLP head:
      pool to 2x2, two hidden layers of `aux_hidden`), `"conv"` (DGL's conv head, CNN only).
    - `ff_theta`: Forward-Forward goodness threshold θ (2.0 in Hinton's and the reference code).
    - `kernel_min`: the ideal kernel's value for pairs of different classes (kerNET: 0 for ReLU nets).
    - `probe_epochs`: epochs of the linear probes that measure an E2E model's hidden blocks; with a
      budget in steps (`TrainConfig(epochs=None, max_steps=N)`) each probe trains N steps instead.
    """

    mode: str = "dgl"
    num_modules: int | None = None
    aux_head: str = "linear"
    aux_hidden: int = 256
    ff_theta: float = 2.0
    kernel_min: float = 0.0
    probe_epochs: int = 3

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        fields.choice("mode", MODES)
        fields.choice("aux_head", HEADS)
        fields.integer("num_modules", 1, optional=True)
        fields.integer("aux_hidden", 1)
        fields.integer("probe_epochs", 1)
        fields.number("ff_theta", 0, low_open=True)
        fields.number("kernel_min", -1, 1, high_open=True)


# --------------------------------------------------------------------------- modules and heads


def check_block_model(model: nn.Module) -> None:
    """Raise a `ValueError` unless `model` has an ordered `blocks` list and a `head`."""
    blocks = getattr(model, "blocks", None)
    if (
        not isinstance(blocks, nn.ModuleList)
        or len(blocks) == 0
        or not isinstance(getattr(model, "head", None), nn.Module)
    ):
        raise ValueError(
            f"{type(model).__name__} has no `blocks` (nn.ModuleList) and `head`: local training cuts a "
            "model along its blocks; build it with modlearn.models (MLP, CNN) or subclass BlockModel"
        )


def make_aux_head(
    feature_shape: Sequence[int], num_classes: int, kind: str = "linear", hidden: int = 256
) -> nn.Module:
    """An auxiliary classifier for features of `feature_shape` (one sample: `(d,)` or `(C, H, W)`).

    `linear`: (global average pool, then) a Linear. `mlp`: pool to 2x2, flatten, two hidden
    ReLU layers of `hidden`, Linear (DGL's "mlp" head). `conv`: Conv3x3-BN-ReLU, pool, Linear (CNN only).
    """
    if kind not in HEADS:
        raise ValueError(f"unknown aux_head {kind!r}: choose one of {HEADS}")
    if len(feature_shape) not in (1, 3):
        raise ValueError(
            f"feature shape {tuple(feature_shape)} is neither (d,) nor (C, H, W): aux heads are "
            "built for MLP and CNN blocks"
        )
    channels = feature_shape[0]
    image = len(feature_shape) == 3
    if kind == "conv" and not image:
        raise ValueError("aux_head='conv' needs image features (a CNN): use 'linear' or 'mlp' for an MLP")
    if kind == "linear":
        pool = [nn.AdaptiveAvgPool2d(1), nn.Flatten()] if image else []
        return nn.Sequential(*pool, nn.Linear(channels, num_classes))
    if kind == "mlp":
        pool = [nn.AdaptiveAvgPool2d(2), nn.Flatten()] if image else []
        width = channels * 4 if image else channels
        return nn.Sequential(
            *pool,
            nn.Linear(width, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )
    return nn.Sequential(
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.BatchNorm2d(channels),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(channels, num_classes),
    )


class LocalNet(nn.Module):
    """A `BlockModel` cut into K modules (`stages`), each with an auxiliary head (`heads`).

    The stages share the model's blocks and `heads[-1]` is the model's own head, so training a
    `LocalNet` trains the model, and `LocalNet(x) == model(x)`: `(batch, ...) -> (batch, classes)`.
    """

    def __init__(
        self,
        model: BlockModel,
        input_shape: Sequence[int],
        num_classes: int,
        num_modules: int | None = None,
        aux_head: str = "linear",
        aux_hidden: int = 256,
    ) -> None:
        super().__init__()
        check_block_model(model)
        self.model = model
        self.bounds = split_blocks(len(model.blocks), num_modules)
        self.stages = nn.ModuleList(nn.Sequential(*model.blocks[a:b]) for a, b in self.bounds)
        shapes = stage_output_shapes(self.stages, input_shape)
        heads = [make_aux_head(s, num_classes, aux_head, aux_hidden) for s in shapes[:-1]]
        self.heads = nn.ModuleList([*heads, model.head])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def prefix(self, k: int) -> nn.Sequential:
        """The first `k` stages as one module (empty for `k = 0`)."""
        return nn.Sequential(*self.stages[:k])


@torch.no_grad()
def stage_output_shapes(stages: Sequence[nn.Module], input_shape: Sequence[int]) -> list[tuple[int, ...]]:
    """The shape of one sample after each stage, found by a forward pass of zeros in eval mode."""
    h = torch.zeros(2, *input_shape, device=next(stages[0].parameters()).device)
    shapes = []
    for stage in stages:
        was_training = stage.training
        h = stage.eval()(h)
        stage.train(was_training)
        shapes.append(tuple(h.shape[1:]))
    return shapes


# --------------------------------------------------------------------------- objectives


class DecoupledObjective(Objective):
    """DGL: every step, stage k trains on its *detached* input with its own head and loss.

    Each stage's loss is backpropagated before the next stage runs, so only one stage's
    activations are alive at a time and no gradient crosses a stage boundary. One Adam/SGD over
    the disjoint parameter sets equals K independent optimizers (their updates are per parameter).
    The reported `loss` and `acc` are the last stage's (the network's output, the quantity that
    validation measures); `loss_k` is stage k's loss and `loss_sum` their sum.
    """

    handles_backward = True

    def __call__(self, model: LocalNet, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        x, y = batch
        h, total, metrics = x, torch.zeros((), device=x.device), {}
        for k, (stage, head) in enumerate(zip(model.stages, model.heads, strict=True)):
            h = stage(h.detach())
            logits = head(h)
            loss = F.cross_entropy(logits.float(), y)
            loss.backward()
            total = total + loss.detach()
            metrics[f"loss_{k}"] = loss.detach()
        metrics["loss_sum"] = total
        metrics["acc"] = (logits.argmax(dim=1) == y).float().mean()
        return loss.detach(), metrics

    @property
    def task(self) -> Objective:
        return CrossEntropy()


def decoupled_gradients(net: LocalNet, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
    """The gradients one DGL step (`DecoupledObjective`) gives every parameter of `net`, by name
    (`net.named_parameters()`), from zero. Runs on a copy: `net` is untouched.

    `x: (batch, ...)`, `y: (batch,)`; each gradient is shaped like its parameter.
    """
    net = copy.deepcopy(net).train()
    net.zero_grad(set_to_none=True)
    DecoupledObjective()(net, (x, y))
    return {name: p.grad for name, p in net.named_parameters()}


class UnitVectors(nn.Module):
    """`(n, d)` or `(n, C, H, W)` -> unit-norm `(n, d)` rows (maps average-pooled).

    kerNET's normalised features."""

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.normalize(as_vectors(h), dim=1)


def kernel_modules(
    model: BlockModel, input_shape: Sequence[int], num_classes: int
) -> tuple[nn.Module, nn.Module]:
    """The kernel method's two modules: all blocks + `UnitVectors` (hidden), and a new output `Linear`."""
    check_block_model(model)
    hidden = nn.Sequential(*model.blocks, UnitVectors())
    width = stage_output_shapes([hidden], input_shape)[0][0]
    return hidden, nn.Linear(width, num_classes).to(next(model.parameters()).device)


def kernel_alignment(features: torch.Tensor, labels: torch.Tensor, kernel_min: float = 0.0) -> torch.Tensor:
    """Alignment of the batch's cosine kernel with the ideal label kernel, off the diagonal.

    `features: (n, d)` (images `(n, C, H, W)` are average-pooled to `(n, C)`), `labels: (n,)`.
    `K_ij = <z_i, z_j>` for unit vectors `z_i`; `K*_ij = 1` if `y_i == y_j` else `kernel_min`;
    `A = sum_{i<j} K_ij K*_ij / sqrt(sum_{i<j} K_ij^2 * sum_{i<j} K*_ij^2)` in [-1, 1], and `A = 1`
    exactly when `K` is a positive multiple of `K*` (Cauchy-Schwarz). Duan & Principe's kerNET proxy.
    """
    z = F.normalize(as_vectors(features).float(), dim=1)
    if z.shape[0] != labels.shape[0] or z.shape[0] < 2:
        raise ValueError(
            f"{z.shape[0]} feature rows and {labels.shape[0]} labels: need the same number, >= 2"
        )
    upper = torch.ones(len(z), len(z), dtype=torch.bool, device=z.device).triu(diagonal=1)
    kernel = (z @ z.T)[upper]
    ideal = torch.where(labels[:, None] == labels[None, :], 1.0, float(kernel_min)).to(kernel)[upper]
    return (kernel * ideal).sum() / (kernel.norm() * ideal.norm()).clamp_min(1e-12)


def as_vectors(h: torch.Tensor) -> torch.Tensor:
    """Features as `(n, d)`: MLP features pass through, CNN maps `(n, C, H, W)` are average-pooled."""
    if h.ndim == 2:
        return h
    if h.ndim == 4:
        return h.mean(dim=(2, 3))
    raise ValueError(f"features of shape {tuple(h.shape)} are neither (n, d) nor (n, C, H, W)")


class KernelAlignmentObjective(Objective):
    """Proxy loss of the kernel method: `1 - kernel_alignment(model(x), y)` for the hidden module."""

    def __init__(self, kernel_min: float = 0.0) -> None:
        self.kernel_min = kernel_min

    def __call__(self, model: nn.Module, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        x, y = batch
        alignment = kernel_alignment(model(x), y, self.kernel_min)
        return 1.0 - alignment, {"alignment": alignment.detach()}


class ForwardForwardNet(nn.Module):
    """An MLP trained with Forward-Forward (Hinton 2022). `forward(x) -> (batch, classes)` goodness scores.

    The label is written into the first `num_classes` inputs; each layer sees the *direction* of
    the previous layer's output (unit norm) and its goodness is `mean(h^2)`. A sample is classified
    by the label whose overlay gives the largest goodness summed over layers (one pass per label).
    """

    def __init__(self, model: BlockModel, num_classes: int) -> None:
        super().__init__()
        if not isinstance(model, MLP):
            raise ValueError(
                f"Forward-Forward is built here for an MLP, not a {type(model).__name__}: "
                "use ml.make_model('mlp', ...)"
            )
        if model.widths[0] < num_classes:
            raise ValueError(f"{model.widths[0]} inputs cannot hold a one-hot label of {num_classes} classes")
        self.layers, self.num_classes = model.blocks, num_classes

    def overlay(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """`x: (batch, ...)` flattened, with `onehot(labels) * max(x)` in its first `num_classes` inputs."""
        flat = x.flatten(1).clone()
        flat[:, : self.num_classes] = 0.0
        flat[torch.arange(len(flat), device=flat.device), labels] = flat.amax(dim=1)
        return flat

    @staticmethod
    def layer_step(layer: nn.Module, h: torch.Tensor) -> torch.Tensor:
        """One layer on the direction of its input: `layer(h / |h|)`, `h: (batch, d)`."""
        return layer(h / (h.norm(dim=1, keepdim=True) + 1e-4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scores = []
        for c in range(self.num_classes):
            h = self.overlay(x, torch.full((len(x),), c, device=x.device, dtype=torch.long))
            total = torch.zeros(len(x), device=x.device)
            for layer in self.layers:
                h = self.layer_step(layer, h)
                total = total + goodness(h)
            scores.append(total)
        return torch.stack(scores, dim=1)


def goodness(h: torch.Tensor) -> torch.Tensor:
    """Forward-Forward goodness of a layer's activity `h: (batch, d)` -> `(batch,)`: `mean(h^2)`."""
    return h.float().pow(2).mean(dim=1)


def ff_layer_loss(h_pos: torch.Tensor, h_neg: torch.Tensor, theta: float = 2.0) -> torch.Tensor:
    """One layer's Forward-Forward loss, a scalar: `mean(softplus(θ - g(h_pos)) + softplus(g(h_neg) - θ))`.

    `h_pos, h_neg: (batch, d)`, the layer's activity on positive and negative data; `g` is `goodness`.
    """
    return (F.softplus(theta - goodness(h_pos)) + F.softplus(goodness(h_neg) - theta)).mean()


class ForwardForwardObjective(Objective):
    """Per layer: `softplus(θ - g(pos)) + softplus(g(neg) - θ)`, backpropagated inside the layer only.

    Positive data carry the true label, negative data a random wrong one. The metric `separated`
    is the fraction of samples whose positive goodness (summed over layers) beats the negative one;
    validation reports the real accuracy of the goodness classifier (one pass per label).
    """

    handles_backward = True

    def __init__(self, theta: float = 2.0) -> None:
        self.theta = theta

    def __call__(self, model: ForwardForwardNet, batch: Batch) -> tuple[torch.Tensor, Metrics]:
        x, y = batch
        wrong = (y + torch.randint_like(y, 1, model.num_classes)) % model.num_classes
        h_pos, h_neg = model.overlay(x, y), model.overlay(x, wrong)
        total, separation = torch.zeros((), device=x.device), torch.zeros(len(x), device=x.device)
        for layer in model.layers:
            h_pos = model.layer_step(layer, h_pos.detach())
            h_neg = model.layer_step(layer, h_neg.detach())
            loss = ff_layer_loss(h_pos, h_neg, self.theta)
            loss.backward()
            total = total + loss.detach()
            separation = separation + (goodness(h_pos) - goodness(h_neg)).detach()
        return total, {"separated": (separation > 0).float().mean()}

    @property
    def task(self) -> Objective:
        return CrossEntropy()


# --------------------------------------------------------------------------- training


@dataclass
class LocalRun:
    """What `train_local` returns: the trained model, the module that classifies, histories, timings.

    `net` (the model cut into modules with their heads) exists for `e2e`, `greedy` and `dgl`;
    `classifier` maps inputs to class scores: the model itself, the kernel method's hidden module +
    unit normalisation + output layer, or the Forward-Forward goodness classifier.
    """

    config: LocalConfig
    model: BlockModel
    classifier: nn.Module
    net: LocalNet | None
    histories: list[History]
    seconds: float

    @property
    def mode(self) -> str:
        return self.config.mode

    @property
    def interrupted(self) -> bool:
        """True when Ctrl-C stopped the training (the modules after the interrupted one are untrained)."""
        return any(h.interrupted for h in self.histories)

    @property
    def steps(self) -> int:
        """Optimizer steps of the method, all modules together (greedy: K times one module's)."""
        return sum(h.num_steps for h in self.histories)

    @property
    def seconds_per_step(self) -> float:
        """Training wall-clock per optimizer step (validation included), from the histories."""
        return sum(row["seconds"] for h in self.histories for row in h.epochs) / max(1, self.steps)


def train_local(
    model: BlockModel, data: Dataset, config: LocalConfig | None = None, train: TrainConfig | None = None
) -> LocalRun:
    """Train `model` in place with `config.mode`, using `fit` once per module (or once for all).

    - `e2e`: one `fit` of the whole model; linear probes are then fitted on its frozen blocks
      so its per-module accuracy can be compared (`module_accuracies`).
    - `greedy`: for k = 1..K, cache the frozen modules' outputs and `fit` module k + its head;
      Ctrl-C during module k keeps modules 1..k-1, leaves module k as far as it got, skips the rest.
    - `dgl`: one `fit` with `DecoupledObjective` (all modules every step, inputs detached).
    - `kernel`: `fit` all blocks on the kernel-alignment proxy, freeze them, `fit` an output layer
      on their unit-normalised outputs.
    - `ff`: one `fit` with `ForwardForwardObjective` on an MLP.
    `train` is the loop's config; greedy and kernel spend its whole budget (epochs or `max_steps`)
    on each module.
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
    check_block_model(model)
    config, train = config or LocalConfig(), train or TrainConfig()
    start = time.perf_counter()
    histories, classifier, net = _TRAINERS[config.mode](model, data, config, train)
    return LocalRun(config, model, classifier, net, histories, time.perf_counter() - start)


def local_net(model: BlockModel, data: Dataset, config: LocalConfig) -> LocalNet:
    """`model` cut into `config.num_modules` modules with `config.aux_head` heads for `data`."""
    return LocalNet(
        model, data.input_shape, data.num_classes, config.num_modules, config.aux_head, config.aux_hidden
    )


def _train_e2e(model: BlockModel, data: Dataset, config: LocalConfig, train: TrainConfig):
    net = local_net(model, data, config)
    history = fit(model, data, train)
    probe = replace(train, epochs=config.probe_epochs if train.epochs else None, desc="probes")
    for k in range(len(net.stages) - 1):
        fit_on_frozen(net.prefix(k + 1), net.heads[k], data, probe)
    return [history], net, net


def _train_greedy(model: BlockModel, data: Dataset, config: LocalConfig, train: TrainConfig):
    net, histories = local_net(model, data, config), []
    modules = len(net.stages)
    for k, (stage, head) in enumerate(zip(net.stages, net.heads, strict=True)):
        histories.append(
            fit_on_frozen(
                net.prefix(k),
                nn.Sequential(stage, head),
                data,
                replace(train, desc=f"module {k + 1}/{modules}"),
            )
        )
        if histories[-1].interrupted:
            report_interrupt("modules", list(range(1, k + 1)), list(range(k + 1, modules + 1)))
            break
    return histories, net, net


def _train_dgl(model: BlockModel, data: Dataset, config: LocalConfig, train: TrainConfig):
    net = local_net(model, data, config)
    return [fit(net, data, train, objective=DecoupledObjective())], net, net


def _train_kernel(model: BlockModel, data: Dataset, config: LocalConfig, train: TrainConfig):
    hidden, output = kernel_modules(model, data.input_shape, data.num_classes)
    first = fit(
        hidden,
        data,
        replace(train, desc="hidden module"),
        objective=KernelAlignmentObjective(config.kernel_min),
    )
    second = fit_on_frozen(hidden, output, data, replace(train, desc="output layer"))
    return [first, second], nn.Sequential(hidden, output), None


def _train_ff(model: BlockModel, data: Dataset, config: LocalConfig, train: TrainConfig):
    ff = ForwardForwardNet(model, data.num_classes)
    return [fit(ff, data, train, objective=ForwardForwardObjective(config.ff_theta))], ff, None


_TRAINERS: dict[str, Callable] = {
    "e2e": _train_e2e,
    "greedy": _train_greedy,
    "dgl": _train_dgl,
    "kernel": _train_kernel,
    "ff": _train_ff,
}


def fit_on_frozen(frozen: nn.Module, trainable: nn.Module, data: Dataset, train: TrainConfig) -> History:
    """Fully modular step: cache `frozen`'s outputs for the train/val splits, then `fit(trainable)` on them.

    `frozen` is never run in training mode or touched by the optimizer; an empty `frozen` passes
    the inputs through.
    """

    def cached(split: Split) -> Split:
        if not list(frozen.parameters()):
            return split
        return Split(predict(frozen, split.x, train.eval_batch_size), split.y)

    return fit(trainable, cached(data.train), train, val=cached(data.val))


# --------------------------------------------------------------------------- measurements


@torch.no_grad()
def module_accuracies(run: LocalRun, split: Split, batch_size: int = 2048) -> list[float]:
    """Accuracy of each module's auxiliary head (a probe for E2E) on `split`; the last is the model's.

    Defined for `e2e`, `greedy` and `dgl`; the kernel method and Forward-Forward have no heads.
    """
    net = run.net
    if net is None:
        raise ValueError(
            f"mode {run.mode!r} has no auxiliary heads per module: use ml.evaluate(run.classifier, split)"
        )
    device = next(net.parameters()).device
    net.eval()
    correct = torch.zeros(len(net.stages))
    for x, y in iterate_batches(split.x.to(device), split.y.to(device), batch_size, shuffle=False):
        h = x
        for k, (stage, head) in enumerate(zip(net.stages, net.heads, strict=True)):
            h = stage(h)
            correct[k] += (head(h).argmax(dim=1) == y).sum().cpu()
    return (correct / len(split)).tolist()


class SavedTensorMeter:
    """Counts the bytes of tensors saved for backward that are alive at once (`peak`, `current`).

    Use as a context manager around a training step. A tensor is counted once however many ops
    save it, from when autograd packs it until the graph that holds it is freed; parameters and
    buffers listed in `exclude` are weights, not activations, and are not counted.
    """

    def __init__(self, exclude: Sequence[torch.Tensor] = ()) -> None:
        self.exclude = {t.untyped_storage().data_ptr() for t in exclude}
        self.alive: dict[tuple, list[int]] = {}
        self.current = self.peak = 0

    def __enter__(self) -> SavedTensorMeter:
        self._hooks = torch.autograd.graph.saved_tensors_hooks(self._pack, _unpack)
        self._hooks.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self._hooks.__exit__(*exc)

    def _pack(self, t: torch.Tensor):
        storage = t.untyped_storage().data_ptr()
        if storage in self.exclude:
            return _Saved(t, None)
        key = (storage, t.storage_offset(), t.numel(), t.dtype)
        entry = self.alive.setdefault(key, [0, t.numel() * t.element_size()])
        if entry[0] == 0:
            self.current += entry[1]
            self.peak = max(self.peak, self.current)
        entry[0] += 1
        return _Saved(t, (self, key))

    def release(self, key: tuple) -> None:
        entry = self.alive[key]
        entry[0] -= 1
        if entry[0] == 0:
            self.current -= entry[1]
            del self.alive[key]


class _Saved:
    """A packed tensor; when autograd frees it, the meter stops counting it."""

    def __init__(self, tensor: torch.Tensor, owner) -> None:
        self.tensor, self.owner = tensor, owner

    def __del__(self) -> None:
        if self.owner is not None:
            meter, key = self.owner
            meter.release(key)


def _unpack(saved: _Saved) -> torch.Tensor:
    return saved.tensor


def step_activation_bytes(module: nn.Module, objective: Objective, batch: Batch) -> int:
    """Peak bytes of saved activations during one training step (forward + backward) of `objective`.

    Runs on a copy of `module`, so the original's weights, gradients and statistics are untouched.
    """
    module = copy.deepcopy(module).train()
    weights = [*module.parameters(), *module.buffers()]
    with SavedTensorMeter(exclude=weights) as meter:
        loss, _ = objective(module, batch)
        if not objective.handles_backward:
            loss.backward()
        del loss
    return meter.peak


def activation_bytes(model: BlockModel, batch: Batch, config: LocalConfig, num_classes: int = 10) -> int:
    """Activation memory of one training step of `config.mode` on `model` for `batch = (x, y)`.

    E2E holds every block's activations until its backward pass; DGL frees each module's before
    the next runs; greedy (and the kernel method) count their most expensive module, whose input
    is a cached tensor; Forward-Forward counts one positive and one negative pass, layer by layer.
    """
    x, y = batch
    check_block_model(model)
    model = copy.deepcopy(model)
    if config.mode == "kernel":
        hidden, output = kernel_modules(model, x.shape[1:], num_classes)
        with torch.no_grad():
            features = hidden.eval()(x)
        return max(
            step_activation_bytes(hidden, KernelAlignmentObjective(config.kernel_min), batch),
            step_activation_bytes(output, CrossEntropy(), (features, y)),
        )
    net = LocalNet(model, x.shape[1:], num_classes, config.num_modules, config.aux_head, config.aux_hidden)
    if config.mode == "e2e":
        return step_activation_bytes(model, CrossEntropy(), batch)
    if config.mode == "dgl":
        return step_activation_bytes(net, DecoupledObjective(), batch)
    if config.mode == "ff":
        return step_activation_bytes(
            ForwardForwardNet(model, num_classes), ForwardForwardObjective(config.ff_theta), batch
        )
    peaks = []
    for k, (stage, head) in enumerate(zip(net.stages, net.heads, strict=True)):
        with torch.no_grad():
            inputs = net.prefix(k).eval()(x)
        peaks.append(step_activation_bytes(nn.Sequential(stage, head), CrossEntropy(), (inputs, y)))
    return max(peaks)


def measure(run: LocalRun, data: Dataset, batch_size: int = 128) -> dict[str, float]:
    """One row of the results table: test accuracy, activation bytes of one step, seconds per step."""
    from .train import evaluate

    device = next(run.model.parameters()).device
    batch = (data.train.x[:batch_size].to(device), data.train.y[:batch_size].to(device))
    return {
        "test_acc": evaluate(run.classifier, data)["acc"],
        "activation_bytes": activation_bytes(run.model, batch, run.config, data.num_classes),
        "seconds_per_step": run.seconds_per_step,
    }


def seed_stats(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation of one method's per-seed scores (sd 0.0 for one seed)."""
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, 0.0
    return mean, (sum((v - mean) ** 2 for v in values) / (len(values) - 1)) ** 0.5


def compare_seeds(a: Sequence[float], b: Sequence[float], names: tuple[str, str]) -> str:
    """`"<a> higher"`, `"<b> higher"` or `"not distinguishable"` for two methods' per-seed scores.

    The means are distinguishable when they differ by more than twice the standard error of their
    difference, `2 * sqrt(sd_a**2 / n_a + sd_b**2 / n_b)`; with fewer than two seeds each the spread
    is unknown and the answer is `"one seed: spread not measured"`.
    """
    if min(len(a), len(b)) < 2:
        return "one seed: spread not measured"
    (mean_a, sd_a), (mean_b, sd_b) = seed_stats(a), seed_stats(b)
    if abs(mean_a - mean_b) <= 2 * (sd_a**2 / len(a) + sd_b**2 / len(b)) ** 0.5:
        return "not distinguishable"
    return f"{names[0] if mean_a > mean_b else names[1]} higher"


def format_comparison(rows: dict[str, dict[str, float]], baseline: str = "e2e") -> str:
    """A text table of `measure` rows, with memory also as a ratio to the `baseline` row."""
    base = rows[baseline]["activation_bytes"] if baseline in rows else None
    lines = [f"{'method':<22}{'test acc':>10}{'activations/step':>18}{'vs E2E':>8}{'ms/step':>9}"]
    for mode, row in rows.items():
        ratio = f"{row['activation_bytes'] / base:.2f}x" if base else "-"
        lines.append(
            f"{MODE_NAMES.get(mode, mode):<22}{row['test_acc']:>10.3f}"
            f"{row['activation_bytes'] / 1024:>15.0f} KB{ratio:>8}{1000 * row['seconds_per_step']:>9.1f}"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- pictures


def plot_module_accuracies(curves: dict[str, Sequence[float]], title: str | None = None):
    """Test accuracy of each module's head (probe for E2E), one line per method. Returns the figure."""
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    for mode, accs in curves.items():
        ax.plot(range(1, len(accs) + 1), accs, "o-", label=MODE_NAMES.get(mode, mode))
    ax.set_xlabel("module k (its head's accuracy)")
    ax.set_ylabel("test accuracy")
    ax.set_xticks(range(1, max(len(a) for a in curves.values()) + 1))
    ax.legend(fontsize=8)
    ax.set_title(title or "accuracy by depth")
    fig.tight_layout()
    return fig


_ROWS = [  # (label, family, per-module backward?, frozen earlier modules?, aux heads?)
    ("E2E backprop", "global forward + global backward", False, False, False),
    ("DGL (decoupled greedy)", "weakly modular: global forward, local backward", True, False, True),
    ("Forward-Forward", "weakly modular: forward passes only, local goodness", True, False, False),
    ("greedy sequential / kernel", "fully modular: one module at a time, then frozen", True, True, True),
]


def plot_taxonomy(num_modules: int = 3):
    """The survey's map as a diagram: where the forward (black) and backward (red) passes go."""
    fig, ax = plt.subplots(figsize=(10, 4.6))
    ax.set_xlim(0, 10.5)
    ax.set_ylim(-0.8, 4.0)
    ax.axis("off")
    for row, (label, family, local, frozen, heads) in enumerate(_ROWS):
        y = 3.3 - row * 1.1
        ax.text(0.0, y + 0.55, f"{label}  ·  {family}", fontsize=9, weight="bold")
        xs = [1.0 + 2.1 * k for k in range(num_modules)]
        for k, x in enumerate(xs):
            gray = frozen and k < num_modules - 1
            ax.add_patch(
                plt.Rectangle((x, y), 1.4, 0.4, facecolor="#dddddd" if gray else "#cfe2f3", edgecolor="black")
            )
            ax.text(
                x + 0.7,
                y + 0.2,
                f"module {k + 1}" + (" (frozen)" if gray else ""),
                ha="center",
                va="center",
                fontsize=7,
            )
            start = 0.35 if k == 0 else xs[k - 1] + 1.4
            ax.annotate("", (x, y + 0.2), (start, y + 0.2), arrowprops=dict(arrowstyle="->", color="black"))
            if local:
                target = "aux head" if heads else "goodness"
                ax.annotate(
                    "",
                    (x + 0.7, y - 0.05),
                    (x + 0.7, y - 0.3),
                    arrowprops=dict(arrowstyle="->", color="crimson"),
                )
                ax.text(x + 0.75, y - 0.28, f"{target} {k + 1}: loss", fontsize=6.5, color="crimson")
        end = xs[-1] + 1.4
        ax.annotate("", (end + 0.6, y + 0.2), (end, y + 0.2), arrowprops=dict(arrowstyle="->", color="black"))
        ax.text(end + 0.65, y + 0.2, "output", va="center", fontsize=7)
        if not local:
            ax.annotate(
                "",
                (xs[0], y - 0.15),
                (end + 0.6, y - 0.15),
                arrowprops=dict(arrowstyle="->", color="crimson", lw=1.5),
            )
            ax.text(
                end + 0.65,
                y - 0.15,
                "one loss, gradient through every module",
                fontsize=6.5,
                color="crimson",
                va="center",
            )
    ax.text(
        0.0,
        -0.7,
        "black: forward pass   red: where gradients flow (a red arrow that stops at a module "
        "boundary = no global backward pass)",
        fontsize=8,
    )
    fig.tight_layout()
    return fig


def train_modes(
    make_model: Callable[[], BlockModel],
    data: Dataset,
    modes: Sequence[str],
    train: TrainConfig | None = None,
    **config,
) -> dict[str, LocalRun]:
    """`{mode: train_local(make_model(), data, LocalConfig(mode, **config), train)}`.

    Same model, same data for every mode."""
    return {mode: train_local(make_model(), data, LocalConfig(mode, **config), train) for mode in modes}


def sweep_modules(
    make_model: Callable[[], BlockModel],
    data: Dataset,
    module_counts: Sequence[int],
    modes: Sequence[str] = ("greedy", "dgl"),
    train: TrainConfig | None = None,
    aux_head: str = "linear",
) -> dict[int, dict[str, dict[str, float]]]:
    """Train a fresh `make_model()` with each mode at each K; `{K: {mode: measure(...) row}}`."""
    return {
        k: {
            mode: measure(run, data)
            for mode, run in train_modes(
                make_model, data, modes, train, num_modules=k, aux_head=aux_head
            ).items()
        }
        for k in module_counts
    }


def plot_sweep(sweep: dict[int, dict[str, dict[str, float]]], highlight: int | None = None):
    """Test accuracy and activation memory against the number of modules K, one line per mode."""
    fig, (acc_ax, mem_ax) = plt.subplots(1, 2, figsize=(10, 3.3))
    counts = sorted(sweep)
    for mode, style in zip(sweep[counts[0]], ("o-", "s--", "^:"), strict=False):
        for ax, key, scale in ((acc_ax, "test_acc", 1.0), (mem_ax, "activation_bytes", 1 / 1024)):
            ax.plot(
                counts, [sweep[k][mode][key] * scale for k in counts], style, label=MODE_NAMES.get(mode, mode)
            )
    for ax, ylabel in ((acc_ax, "test accuracy"), (mem_ax, "activations per step (KB)")):
        if highlight is not None:
            ax.axvline(highlight, color="gray", ls="--", lw=1)
        ax.set_xlabel("number of modules K")
        ax.set_ylabel(ylabel)
        ax.set_xticks(counts)
        ax.legend(fontsize=8)
    if highlight in sweep:
        row = " | ".join(
            f"{MODE_NAMES.get(m, m)}: acc {r['test_acc']:.3f}, {r['activation_bytes'] / 1024:.0f} KB"
            for m, r in sweep[highlight].items()
        )
        fig.suptitle(f"K = {highlight}: {row}", fontsize=9)
    fig.tight_layout()
    return fig
