"""Generators of a deep causal model: variables and their encodings, one network per mechanism,
ancestral and interventional sampling.

Rahman & Kocaoglu, "Modular Learning of Deep Causal Generative Models for High-dimensional
Causal Inference", ICML 2024 (arXiv 2401.01426; authors' code Musfiqshohan/Modular-DCM).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..validate import ConfigFields, check_int, check_type
from .graph import CausalGraph
from .scm import empirical_distribution

KINDS = ("discrete", "continuous", "image")


@dataclass(frozen=True)
class Variable:
    """One observed variable: `discrete` with `size` categories, `continuous` with `size`
    dimensions, or an `image` of `shape (C, H, W)` with values in [0, 1]."""

    name: str
    kind: str = "discrete"
    size: int = 2
    shape: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        check_type("name", self.name, str, owner="Variable", hint="name the variable with a string, e.g. 'X'")
        fields.choice("kind", KINDS)
        fields.integer("size", 1)
        if self.kind == "image" and (len(self.shape) != 3 or self.shape[1] % 4 or self.shape[2] % 4):
            raise ValueError(
                f"image variable {self.name!r} needs shape (C, H, W) with H and W multiples "
                f"of 4, got {self.shape}"
            )
        if self.kind != "image" and self.size < (2 if self.kind == "discrete" else 1):
            raise ValueError(f"variable {self.name!r}: size={self.size} is too small for kind {self.kind!r}")

    @property
    def width(self) -> int:
        """Columns the variable takes in a flat row (one-hot for discrete, pixels for images)."""
        return math.prod(self.shape) if self.kind == "image" else self.size

    def encode(self, values) -> torch.Tensor:
        """Values -> `(n, width)` floats: class indices one-hot, images flattened."""
        values = torch.as_tensor(values)
        if self.kind == "discrete":
            if values.dtype.is_floating_point or values.ndim != 1:
                raise ValueError(
                    f"{self.name!r} is discrete: give class indices of shape (n,), "
                    f"got {values.dtype} {tuple(values.shape)}"
                )
            self.check_values(values)
            return F.one_hot(values.long(), self.size).float()
        return values.float().reshape(len(values), self.width)

    def decode(self, encoded: torch.Tensor) -> torch.Tensor:
        """`(n, width)` -> class indices `(n,)`, images `(n, C, H, W)`, or continuous `(n, size)`."""
        if self.kind == "discrete":
            return encoded.argmax(dim=1)
        return encoded.reshape(len(encoded), *self.shape) if self.kind == "image" else encoded

    def check_values(self, values: torch.Tensor) -> None:
        if self.kind == "discrete" and len(values) and (values.min() < 0 or values.max() >= self.size):
            raise ValueError(
                f"{self.name!r} takes values 0..{self.size - 1}, got "
                f"{sorted(set(values.flatten().tolist()))[:10]}"
            )


def encode_rows(variables: Sequence[Variable], data: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Concatenate the encodings of `variables` from `data` into rows `(n, total width)`."""
    missing = [v.name for v in variables if v.name not in data]
    if missing:
        raise ValueError(f"data lacks the variables {missing}; it has {sorted(data)}")
    return torch.cat([v.encode(data[v.name]) for v in variables], dim=1)


def split_rows(variables: Sequence[Variable], rows: torch.Tensor) -> dict[str, torch.Tensor]:
    """Inverse of `encode_rows` (still encoded): name -> `(n, width)`."""
    parts = torch.split(rows, [v.width for v in variables], dim=1)
    return {v.name: part for v, part in zip(variables, parts, strict=True)}


# --------------------------------------------------------------------------- generators


@dataclass
class DCMConfig:
    """Modular-DCM's method numbers from the authors' code (Rahman & Kocaoglu, ICML 2024):
    noise 128, confounder noise 128, G/D hidden [256, 256], WGAN-GP with lambda 10 and one critic
    step, Gumbel temperature from 1 multiplied by exp(-rate * iteration) every 100 iterations,
    floor 0.1. Their optimizer settings are a `TrainConfig`: `causal.dcm_train_config()`.

    Ours: `tau_rate` (the authors' rate is not stated), `image_channels` (conv generator width),
    `lr_decay` (linear decay to 0), `straight_through` (one-hot forward pass of the Gumbel-softmax).
    """

    noise_dim: int = 128
    confounder_dim: int = 128
    hidden: tuple[int, ...] = (256, 256)
    critic_hidden: tuple[int, ...] = (256, 256)
    image_channels: int = 32
    gp_weight: float = 10.0
    critic_steps: int = 1
    tau_start: float = 1.0
    tau_floor: float = 0.1
    tau_rate: float = 1e-3
    anneal_every: int = 100
    straight_through: bool = True
    lr_decay: bool = False

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        for name in ("noise_dim", "confounder_dim", "image_channels", "critic_steps", "anneal_every"):
            fields.integer(name, 1)
        fields.each("hidden", check_int, 1)
        fields.each("critic_hidden", check_int, 1)
        fields.number("gp_weight", 0)
        fields.number("tau_start", 0, low_open=True)
        fields.number("tau_floor", 0, self.tau_start, low_open=True)
        fields.number("tau_rate", 0)
        for name in ("straight_through", "lr_decay"):
            fields.boolean(name)


def mlp(in_features: int, hidden: Sequence[int], out_features: int) -> nn.Sequential:
    """`Linear -> LeakyReLU(0.2)` per hidden width, then a `Linear` to `out_features`."""
    layers, width = [], in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.LeakyReLU(0.2)]
        width = h
    return nn.Sequential(*layers, nn.Linear(width, out_features))


class ConvImageBody(nn.Module):
    """Vector `(n, in_features)` -> image `(n, C*H*W)` in [0, 1]: a linear map to a (H/4, W/4)
    grid, then two (upsample x2, conv 3x3) stages."""

    def __init__(self, in_features: int, shape: Sequence[int], channels: int = 32) -> None:
        super().__init__()
        c, h, w = shape
        self.grid = (channels, h // 4, w // 4)
        self.project = nn.Linear(in_features, math.prod(self.grid))
        self.body = nn.Sequential(
            nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels),
            nn.LeakyReLU(0.2),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(channels, c, 3, padding=1),
            nn.Sigmoid(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(self.project(z).reshape(len(z), *self.grid)).flatten(1)


class MechanismGenerator(nn.Module):
    """`G_V(parents, noise)`: `parents (n, parent_width)` and `noise (n, noise_width)` (own noise
    then one block per confounder) -> `(n, V.width)`.

    Discrete outputs go through Gumbel-softmax (straight-through: one-hot forward, soft gradient)
    at temperature `tau`; continuous ones are linear; images come from a small conv generator.
    """

    def __init__(self, variable: Variable, parent_width: int, noise_width: int, config: DCMConfig) -> None:
        super().__init__()
        self.variable, self.parent_width, self.noise_width = variable, parent_width, noise_width
        self.straight_through = config.straight_through
        in_features = parent_width + noise_width
        if variable.kind == "image":
            self.net = ConvImageBody(in_features, variable.shape, config.image_channels)
        else:
            self.net = mlp(in_features, config.hidden, variable.width)

    def forward(self, parents: torch.Tensor, noise: torch.Tensor, tau: float = 1.0) -> torch.Tensor:
        out = self.net(torch.cat([parents, noise], dim=1)).float()
        if self.variable.kind == "discrete":
            return F.gumbel_softmax(out, tau=tau, hard=self.straight_through or not self.training)
        return out


class DCM(nn.Module):
    """A deep causal generative model: one `MechanismGenerator` per variable of `graph`.

    `sample(n, do={"X": 1})` samples observationally or under an intervention; `plug_in` puts a
    pretrained (frozen) generator in place of a variable's mechanism.
    """

    def __init__(
        self,
        graph: CausalGraph,
        variables: Sequence[Variable] | Mapping[str, Variable],
        config: DCMConfig | None = None,
    ) -> None:
        super().__init__()
        self.graph, self.config = graph, config or DCMConfig()
        variables = list(variables.values()) if isinstance(variables, Mapping) else list(variables)
        self.variables = {v.name: v for v in variables}
        graph.check_names(self.variables)
        missing = [v for v in graph.nodes if v not in self.variables]
        if missing:
            raise ValueError(f"no Variable given for {missing}: pass one per graph variable")
        self.tau = self.config.tau_start
        self.pretrained: set[str] = set()
        self.generators = nn.ModuleDict({v: self._new_generator(v) for v in graph.nodes})

    def _new_generator(self, name: str) -> MechanismGenerator:
        parent_width = sum(self.variables[p].width for p in self.graph.parents(name))
        noise_width = self.config.noise_dim + self.config.confounder_dim * len(self.graph.confounders(name))
        return MechanismGenerator(self.variables[name], parent_width, noise_width, self.config)

    def plug_in(self, name: str, generator: MechanismGenerator) -> None:
        """Use a pretrained conditional generator for `name`, frozen (never trained here)."""
        self.graph.check_names([name])
        expected = self.generators[name]
        if (generator.parent_width, generator.noise_width) != (expected.parent_width, expected.noise_width):
            raise ValueError(
                f"generator for {name!r} takes parents/noise widths "
                f"{generator.parent_width}/{generator.noise_width}, the graph needs "
                f"{expected.parent_width}/{expected.noise_width}: build it with the same "
                "DCMConfig and parents"
            )
        generator.requires_grad_(False).eval()
        self.generators[name] = generator
        self.pretrained.add(name)

    def train(self, mode: bool = True) -> DCM:
        super().train(mode)
        for name in self.pretrained:
            self.generators[name].eval()
        return self

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def generate(
        self,
        n: int,
        names: Iterable[str],
        given: Mapping[str, torch.Tensor] | None = None,
        tau: float | None = None,
    ) -> dict[str, torch.Tensor]:
        """Ancestral sampling of `names` (encoded, `(n, width)` each); `given` holds encoded values
        used as they are (data for conditioning parents, or clamped interventions).

        Each confounder's noise is drawn once and shared by the generators it touches.
        """
        given = dict(given or {})
        names = set(names) - set(given)
        values = dict(given)
        device = self.device
        confounder_noise = {
            e: torch.randn(n, self.config.confounder_dim, device=device) for e in self.graph.bidirected
        }
        for v in self.graph.nodes:
            if v not in names:
                continue
            parents = self.graph.parents(v)
            absent = [p for p in parents if p not in values]
            if absent:
                raise ValueError(
                    f"cannot generate {v!r}: its parents {absent} are neither generated nor given"
                )
            noise = torch.cat(
                [torch.randn(n, self.config.noise_dim, device=device)]
                + [confounder_noise[e] for e in self.graph.confounders(v)],
                dim=1,
            )
            parent_values = torch.cat([values[p] for p in parents], dim=1) if parents else noise[:, :0]
            values[v] = self.generators[v](parent_values, noise, self.tau if tau is None else tau)
        return values

    def encode_do(self, n: int, do: Mapping[str, object] | None) -> dict[str, torch.Tensor]:
        """Intervention values -> encoded `(n, width)` tensors; unknown names or values raise."""
        do = dict(do or {})
        self.graph.check_names(do, "intervention variable")
        encoded = {}
        for name, value in do.items():
            var = self.variables[name]
            value = torch.as_tensor(value)
            if var.kind == "discrete" and (value.dtype.is_floating_point or value.ndim != 0):
                raise ValueError(
                    f"do({name}=...) needs one class index 0..{var.size - 1}, got {value.tolist()}"
                )
            encoded[name] = var.encode(value.reshape(1, *value.shape)).to(self.device).expand(n, -1)
        return encoded

    @torch.no_grad()
    def sample(self, n: int, do: Mapping[str, object] | None = None) -> dict[str, torch.Tensor]:
        """`n` samples of every variable (decoded, on the CPU), observational or under `do`.

        `do={"X": 1}` clamps X to 1 and samples its descendants with fresh noise; variables that
        do not descend from X keep their observational distribution.
        """
        if n < 1:
            raise ValueError(f"n={n} must be >= 1")
        was_training = self.training
        self.eval()
        try:
            values = self.generate(n, self.graph.nodes, self.encode_do(n, do))
        finally:
            self.train(was_training)
        return {v: self.variables[v].decode(values[v]).cpu() for v in self.graph.nodes}

    def interventional(self, target: str, treatment: str, n: int = 20_000, chunk: int = 4096) -> np.ndarray:
        """`P(target | do(treatment = x))` as an array `(treatment size, target size)` from `n`
        samples per value (both variables discrete), drawn `chunk` at a time to bound memory."""
        sizes = [self._discrete(name).size for name in (treatment, target)]
        rows = []
        for x in range(sizes[0]):
            draws = [
                self.sample(min(chunk, n - start), do={treatment: x})[target] for start in range(0, n, chunk)
            ]
            rows.append(empirical_distribution([torch.cat(draws)], sizes[1:]))
        return np.stack(rows)

    def _discrete(self, name: str) -> Variable:
        self.graph.check_names([name])
        if self.variables[name].kind != "discrete":
            raise ValueError(
                f"{name!r} is {self.variables[name].kind}: distributions need a discrete variable"
            )
        return self.variables[name]
