"""Modular-DCM training: WGAN-GP on one training problem at a time, with `fit`.

Rahman & Kocaoglu, "Modular Learning of Deep Causal Generative Models for High-dimensional
Causal Inference", ICML 2024 (arXiv 2401.01426; authors' code Musfiqshohan/Modular-DCM).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn as nn

from ..api import Run, Timer, check_hooks, contract_error, trainable_copy
from ..data import Split
from ..interrupts import report_interrupt
from ..train import History, Hook, Objective, TrainConfig, TrainState, fit, make_optimizer
from ..validate import check_choice, check_type
from .generators import DCM, DCMConfig, encode_rows, mlp, split_rows
from .graph import TrainingStep
from .scm import interventional_tvd


class _StepModel(nn.Module):
    """What `fit` trains for one step: the DCM (some generators frozen) and the step's critic."""

    def __init__(self, dcm: DCM, critic: nn.Module) -> None:
        super().__init__()
        self.dcm, self.critic = dcm, critic


class WassersteinGP(Objective):
    """WGAN-GP on the joint of `step.variables` given `step.conditions` (taken from the batch).

    Each call: `critic_steps` critic updates (its own optimizer, built from `train` like `fit`'s) on
    `D(fake) - D(real) + lambda (|grad D(mix)| - 1)^2`, then the generator loss `-D(fake)` is
    back-propagated for `fit`'s optimizer, which holds only the trainable generators.
    """

    handles_backward = True

    def __init__(self, dcm: DCM, step: TrainingStep, config: DCMConfig, train: TrainConfig) -> None:
        self.dcm, self.step, self.config, self.train = dcm, step, config, train
        self.columns = [dcm.variables[v] for v in step.variables + step.conditions]
        self.critic_optimizer: torch.optim.Optimizer | None = None
        self._saved_critic_optimizer: dict | None = None

    def __call__(self, model: _StepModel, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real = batch[0].float()
        given = {k: v for k, v in split_rows(self.columns, real).items() if k in self.step.conditions}
        generated = self.dcm.generate(len(real), self.step.variables, given)
        fake = torch.cat([generated[v.name] for v in self.columns], dim=1)
        if self.critic_optimizer is None:
            self.critic_optimizer = make_optimizer(model.critic.parameters(), self.train)
            if self._saved_critic_optimizer is not None:
                self.critic_optimizer.load_state_dict(self._saved_critic_optimizer)
        for _ in range(self.config.critic_steps):
            critic_loss, distance = self._critic_update(model.critic, real, fake.detach())
        model.critic.requires_grad_(False)
        generator_loss = -model.critic(fake).float().mean()
        generator_loss.backward()
        model.critic.requires_grad_(True)
        return generator_loss.detach(), {
            "critic_loss": critic_loss,
            "wasserstein": distance,
            "tau": torch.tensor(self.dcm.tau),
        }

    def state_dict(self) -> dict:
        """The critic optimizer's state (for `fit`'s checkpoints)."""
        optimizer = self.critic_optimizer
        return {
            "critic_optimizer": optimizer.state_dict()
            if optimizer is not None
            else self._saved_critic_optimizer
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore the critic optimizer now, or when the first batch creates it."""
        self._saved_critic_optimizer = state["critic_optimizer"]
        if self.critic_optimizer is not None and self._saved_critic_optimizer is not None:
            self.critic_optimizer.load_state_dict(self._saved_critic_optimizer)

    def _critic_update(self, critic: nn.Module, real: torch.Tensor, fake: torch.Tensor):
        self.critic_optimizer.zero_grad(set_to_none=True)
        distance = critic(real).float().mean() - critic(fake).float().mean()
        loss = -distance + self.config.gp_weight * gradient_penalty(critic, real, fake)
        loss.backward()
        self.critic_optimizer.step()
        return loss.detach(), distance.detach()


def gradient_penalty(
    critic: nn.Module, real: torch.Tensor, fake: torch.Tensor, alpha: torch.Tensor | None = None
) -> torch.Tensor:
    """`mean((|grad_x D(x)| - 1)^2)` at points `x = alpha real + (1 - alpha) fake` between real and
    fake rows `(n, d)`; `alpha: (n, 1)`, drawn uniformly in [0, 1] when not given."""
    alpha = torch.rand(len(real), 1, device=real.device) if alpha is None else alpha
    mix = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(mix).float().sum(), mix, create_graph=True)
    return ((grad.norm(dim=1) - 1) ** 2).mean()


class DCMSchedule(Hook):
    """Gumbel temperature and learning rates during one training problem.

    Every `anneal_every` steps `tau = max(floor, start * exp(-rate * step))`. With `lr_decay` both
    learning rates fall linearly to 0 over the run (ours, it steadies the end of GAN training).
    """

    def __init__(self, dcm: DCM, objective: WassersteinGP, config: DCMConfig) -> None:
        self.dcm, self.objective, self.config = dcm, objective, config

    def on_fit_start(self, state: TrainState) -> None:
        self.dcm.tau = self.config.tau_start

    def state_dict(self) -> dict:
        """The Gumbel temperature (for `fit`'s checkpoints)."""
        return {"tau": self.dcm.tau}

    def load_state_dict(self, state: dict) -> None:
        self.dcm.tau = state["tau"]

    def on_step_end(self, state: TrainState) -> None:
        c = self.config
        if state.step % c.anneal_every == 0:
            self.dcm.tau = max(c.tau_floor, c.tau_start * math.exp(-c.tau_rate * state.step))
        if c.lr_decay:
            lr = state.config.lr * max(0.0, 1 - state.step / state.total_steps)
            for group in state.optimizer.param_groups + self.objective.critic_optimizer.param_groups:
                group["lr"] = lr


class TVDTracker(Hook):
    """Every `every` generator steps, the TVD of the trained DCM's `P(target | do(treatment))` (from `n`
    samples per treatment value) to `truth` `(treatment size, target size)`.

    It measures the DCM being trained, read from the `TrainState` it receives (`state.model.dcm`),
    so it follows the copy `train_dcm` trains. Steps count across the training problems it watches
    (pass one tracker to `train_dcm`): `steps[i]` generator steps in all had been taken when `tvd[i]`
    was measured. The global random state is saved and restored around each measurement, so training
    is the same with or without it.
    """

    def __init__(
        self, target: str, treatment: str, truth: np.ndarray, every: int = 50, n: int = 2000
    ) -> None:
        if every < 1 or n < 1:
            raise ValueError(
                f"TVDTracker(every={every}, n={n}): both must be >= 1; pass e.g. every=50, n=2000"
            )
        self.target, self.treatment, self.truth = target, treatment, truth
        self.every, self.n = every, n
        self.steps: list[int] = []
        self.tvd: list[float] = []
        self._seen = 0

    def on_step_end(self, state: TrainState) -> None:
        self._seen += 1
        if self._seen % self.every == 0:
            with torch.random.fork_rng(devices=[]):
                estimate = state.model.dcm.interventional(self.target, self.treatment, self.n)
            self.steps.append(self._seen)
            self.tvd.append(interventional_tvd(estimate, self.truth))


MODES = ("modular", "joint")


def dcm_train_config(**changes: object) -> TrainConfig:
    """The authors' optimizer settings as a `TrainConfig`: Adam lr 1e-4, betas (0.5, 0.9), weight
    decay 1e-6, batch 200, 301 epochs (Rahman & Kocaoglu, ICML 2024), no progress bar.

    `changes` replace fields, e.g. `dcm_train_config(lr=2e-3, max_steps=400, seed=1)`.
    """
    paper = TrainConfig(
        epochs=301, batch_size=200, lr=1e-4, betas=(0.5, 0.9), weight_decay=1e-6, progress=False
    )
    return replace(paper, **changes)


def _check_training_args(
    owner: str,
    model: object,
    data: Mapping[str, torch.Tensor],
    config: DCMConfig | None,
    train: TrainConfig | None,
) -> None:
    if not isinstance(model, DCM):
        raise contract_error(
            owner,
            model,
            "a causal.DCM (one generator per variable of a causal graph)",
            "build one with causal.DCM(graph, [causal.Variable(v) for v in graph.nodes], causal.DCMConfig())",
        )
    check_type("data", data, Mapping, owner=owner, hint="pass a dict {variable name: tensor of samples}")
    check_type("config", config, DCMConfig, owner=owner, optional=True, hint="pass a DCMConfig(...)")
    check_type(
        "train",
        train,
        TrainConfig,
        owner=owner,
        optional=True,
        hint="pass a TrainConfig, e.g. causal.dcm_train_config(max_steps=400)",
    )


def train_step(
    dcm: DCM,
    step: TrainingStep,
    data: Mapping[str, torch.Tensor],
    config: DCMConfig | None = None,
    train: TrainConfig | None = None,
    hooks: Iterable[Hook] = (),
) -> History:
    """Train `step.generators` of `dcm` **in place** (all others frozen) to match the data's joint of
    `step.variables` given `step.conditions`, with `fit` and the `WassersteinGP` objective.

    The lower-level function under `train_dcm` (which trains a copy of the DCM it is given): use it
    to train one step of a DCM of your own, e.g. a mechanism to plug in elsewhere.

    `config` defaults to `dcm.config`, `train` to `dcm_train_config()`; the critic's optimizer is
    built from `train` too. With `train.checkpoint_path` the checkpoint holds the critic, both
    optimizers and the temperature, so a resumed step equals the uninterrupted one."""
    _check_training_args("train_step", dcm, data, config, train)
    config, train = config or dcm.config, train or dcm_train_config()
    dcm.graph.check_names(step.generators + step.variables + step.conditions)
    pretrained = sorted(set(step.generators) & dcm.pretrained)
    if pretrained:
        raise ValueError(f"{pretrained} are plugged-in pretrained generators: they are not trained here")
    objective = WassersteinGP(dcm, step, config, train)
    rows = encode_rows(objective.columns, data)
    critic = mlp(rows.shape[1], config.critic_hidden, 1)
    model = _StepModel(dcm, critic)
    for name, gen in dcm.generators.items():
        gen.requires_grad_(name in step.generators)
    params = [p for name in step.generators for p in dcm.generators[name].parameters()]
    history = fit(
        model,
        Split(rows, torch.zeros(len(rows), dtype=torch.long)),
        replace(train, desc=f"train {'+'.join(step.generators)}"),
        objective,
        hooks=[DCMSchedule(dcm, objective, config), *hooks],
        params=params,
    )
    dcm.requires_grad_(False)
    return history


def _training_steps(dcm: DCM, mode: str) -> list[TrainingStep]:
    """Modular: the graph's steps in causal order, pretrained generators left out (steps with none
    left dropped). Joint: one step training every non-pretrained generator on all variables."""
    nodes = dcm.graph.nodes
    if mode == "joint":
        return [TrainingStep(tuple(v for v in nodes if v not in dcm.pretrained), nodes, ())]
    steps = []
    for step in dcm.graph.training_steps():
        trainable = tuple(v for v in step.generators if v not in dcm.pretrained)
        if trainable:
            steps.append(TrainingStep(trainable, step.variables, step.conditions))
    return steps


@dataclass
class DCMExtras:
    """What `train_dcm` returns besides the model: the generators of each step it trained, in order
    (`[("Z",), ("X", "Y")]` for the front-door graph; `run.histories` is keyed by them joined, "Z",
    "X,Y"), and the `mode` ("modular" or "joint")."""

    steps: list[tuple[str, ...]]
    mode: str


def step_name(generators: tuple[str, ...]) -> str:
    """The key of a training step in `run.histories`: its generators joined, e.g. `"X,Y"`."""
    return ",".join(generators)


def train_dcm(
    model: DCM,
    data: Mapping[str, torch.Tensor],
    config: DCMConfig | None = None,
    train: TrainConfig | None = None,
    *,
    hooks: Iterable[Hook | Callable[[TrainState], None]] = (),
    mode: str = "modular",
) -> Run[DCMExtras]:
    """Train a copy of the DCM `model` on `data` (`{variable: samples}`, first dimension n); `model`
    is left unchanged and `run.model` is the trained DCM.

    `mode="modular"` is Modular-DCM: the H-nodes one after the other in causal order, earlier ones
    frozen; `mode="joint"` is the baseline: every generator at once on the joint of all variables.
    Plugged-in pretrained generators are never trained. `config` (method numbers) defaults to
    `model.config`, `train` (optimizer, batch, steps, seed) to `dcm_train_config()`; both, and
    `hooks`, go to every step's `fit` (a hook reads the DCM being trained as `state.model.dcm`).

    `run.histories` holds one `History` per trained step, keyed by its generators joined ("Z", "X,Y");
    `run.extras.steps` lists those generators. Ctrl-C stops after the current step: its `History` has
    `interrupted=True` and the later steps are not trained.
    """
    _check_training_args("train_dcm", model, data, config, train)
    hooks = check_hooks(hooks, "train_dcm")
    check_choice("mode", mode, MODES, owner="train_dcm")
    dcm = trainable_copy(model)
    steps = _training_steps(dcm, mode)
    if not steps:
        raise ValueError(
            f"train_dcm(mode={mode!r}): every generator of the DCM is a plugged-in pretrained one, so there "
            "is nothing to train; leave at least one generator to train"
        )
    if len(steps) > 1 and train is not None and train.checkpoint_path:
        raise ValueError(
            f"train_dcm(train=TrainConfig(checkpoint_path={train.checkpoint_path!r})): one checkpoint "
            f"cannot hold the {len(steps)} training steps of mode={mode!r}; pass checkpoint_path=None, "
            "or call causal.train_step for each step with its own checkpoint_path"
        )
    histories: dict[str, History] = {}
    with Timer() as timer:
        for i, step in enumerate(steps):
            history = train_step(dcm, step, data, config, train, hooks)
            histories[step_name(step.generators)] = history
            if history.interrupted:
                report_interrupt(
                    "groups", [s.generators for s in steps[:i]], [s.generators for s in steps[i:]]
                )
                break
    trained = [s.generators for s in steps[: len(histories)]]
    return Run(
        dcm, history, DCMExtras(trained, mode), histories=histories, method="dcm", seconds=timer.seconds
    )
