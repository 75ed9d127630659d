"""Modular-DCM: deep causal generative models trained module by module.

Rahman & Kocaoglu, "Modular Learning of Deep Causal Generative Models for High-dimensional
Causal Inference", ICML 2024 (arXiv 2401.01426; authors' code Musfiqshohan/Modular-DCM).

A causal graph with latent confounders (an ADMG: directed edges plus bidirected ones) gets one
generator per observed variable, `V = G_V(pa(V), eps_V, {u_c : c touches V})`. The variables are
grouped into c-components, the c-components into the nodes of an *H-graph*, and the H-nodes are
trained one after the other (earlier generators frozen) with WGAN-GP on the joint their variables
must match. Interventions `do(X = x)` clamp X and sample its descendants with fresh noise.
Introduced in `tutorials/08_modular_dcm.ipynb`.
"""
from __future__ import annotations

import hashlib
import itertools
import math
import os
import re
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..data import Split
from ..interrupts import report_interrupt
from ..train import History, Hook, Objective, TrainConfig, TrainState, fit
from ..validate import ConfigFields, check_float, check_int, check_type

KINDS = ("discrete", "continuous", "image")


# --------------------------------------------------------------------------- causal graphs

@dataclass(frozen=True)
class TrainingStep:
    """One modular training problem.

    `generators`: the mechanisms trained now (one H-node); `variables`: the joint they must match
    (the H-node plus what it needs, earlier generators frozen); `conditions`: parents of that joint
    taken from the data.
    """

    generators: tuple[str, ...]
    variables: tuple[str, ...]
    conditions: tuple[str, ...]


class CausalGraph:
    """An acyclic directed mixed graph: `directed` edges `(parent, child)` and `bidirected` pairs.

    A bidirected pair `(a, b)` is a latent confounder of `a` and `b`. `CausalGraph.parse("X -> Z,
    Z -> Y, X <-> Y")` reads the same from text.
    """

    def __init__(self, directed: Iterable[tuple[str, str]], bidirected: Iterable[tuple[str, str]] = (),
                 nodes: Iterable[str] | None = None) -> None:
        directed, bidirected = [tuple(e) for e in directed], [tuple(e) for e in bidirected]
        named = list(dict.fromkeys(v for edge in directed + bidirected for v in edge))
        if nodes is not None:
            nodes = list(dict.fromkeys(nodes))
            unknown = sorted(set(named) - set(nodes))
            if unknown:
                raise ValueError(f"edges name unknown variables {unknown}: add them to nodes={nodes}")
            named = nodes
        for a, b in directed + bidirected:
            if a == b:
                raise ValueError(f"edge ({a!r}, {b!r}) joins a variable to itself: remove it")
        self.dag = nx.DiGraph()
        self.dag.add_nodes_from(named)
        self.dag.add_edges_from(directed)
        if not nx.is_directed_acyclic_graph(self.dag):
            cycle = [u for u, _ in nx.find_cycle(self.dag)]
            raise ValueError(f"the directed edges form a cycle {' -> '.join(cycle + cycle[:1])}: "
                             "a causal graph must be acyclic (model feedback with a bidirected edge)")
        self.bidirected = tuple(dict.fromkeys(tuple(sorted(e)) for e in bidirected))
        self.nodes = tuple(nx.lexicographical_topological_sort(self.dag, key=named.index))

    @classmethod
    def parse(cls, text: str) -> "CausalGraph":
        """`"X -> Z, Z -> Y, X <-> Y"` (commas, semicolons or new lines between edges)."""
        directed, bidirected = [], []
        for part in filter(None, (p.strip() for p in re.split(r"[,;\n]", text))):
            match = re.fullmatch(r"(\w+)\s*(<->|->|<-)\s*(\w+)", part)
            if not match:
                raise ValueError(f"cannot read edge {part!r}: write 'A -> B', 'A <- B' or 'A <-> B'")
            a, arrow, b = match.groups()
            {"->": directed, "<-": directed, "<->": bidirected}[arrow].append((b, a) if arrow == "<-" else (a, b))
        return cls(directed, bidirected)

    def __repr__(self) -> str:
        edges = [f"{a}->{b}" for a, b in self.dag.edges] + [f"{a}<->{b}" for a, b in self.bidirected]
        return f"CausalGraph({', '.join(edges)})"

    def check_names(self, names: Iterable[str], what: str = "variable") -> None:
        """Raise a `ValueError` for any name that is not a variable of the graph."""
        unknown = [n for n in names if n not in self.dag]
        if unknown:
            raise ValueError(f"unknown {what} {unknown}: the graph's variables are {list(self.nodes)}")

    def parents(self, v: str) -> list[str]:
        """Parents of `v`, in topological order."""
        return [p for p in self.nodes if self.dag.has_edge(p, v)]

    def confounders(self, v: str) -> list[tuple[str, str]]:
        """The bidirected edges (latent confounders) touching `v`."""
        return [e for e in self.bidirected if v in e]

    def ancestors(self, v: str) -> set[str]:
        return nx.ancestors(self.dag, v)

    def descendants(self, v: str) -> set[str]:
        return nx.descendants(self.dag, v)

    def _ordered(self, names: Iterable[str]) -> tuple[str, ...]:
        names = set(names)
        return tuple(v for v in self.nodes if v in names)

    def c_components(self) -> list[tuple[str, ...]]:
        """Variables joined by bidirected paths, each component in topological order."""
        confounding = nx.Graph()
        confounding.add_nodes_from(self.nodes)
        confounding.add_edges_from(self.bidirected)
        comps = [self._ordered(c) for c in nx.connected_components(confounding)]
        return sorted(comps, key=lambda c: self.nodes.index(c[0]))

    def _c_component_of(self, v: str) -> tuple[str, ...]:
        return next(c for c in self.c_components() if v in c)

    def h_graph(self) -> nx.DiGraph:
        """The H-graph: c-components, with `C1 -> C2` when a parent of C2 inside C1 has an ancestor in C2.

        Such a parent is confounded with C2 through a back-door path, so C1's generators must be
        trained (and frozen) first. Cycles are merged into one node (the authors merge 2- and
        3-cycles; here every strongly connected set is merged). Nodes are tuples of variables.
        """
        comps = self.c_components()
        h = nx.DiGraph()
        h.add_nodes_from(comps)
        for c1, c2 in itertools.permutations(comps, 2):
            outside_parents = {p for v in c2 for p in self.parents(v)} - set(c2)
            if any(self.ancestors(p) & set(c2) for p in outside_parents & set(c1)):
                h.add_edge(c1, c2)
        return self._merge_cycles(h)

    def _merge_cycles(self, h: nx.DiGraph) -> nx.DiGraph:
        condensed = nx.condensation(h)
        merged = {i: self._ordered(v for node in condensed.nodes[i]["members"] for v in node) for i in condensed}
        out = nx.DiGraph()
        out.add_nodes_from(merged.values())
        out.add_edges_from((merged[a], merged[b]) for a, b in condensed.edges)
        return out

    def joint_variables(self, group: Iterable[str]) -> tuple[str, ...]:
        """The variable set a group of generators must match (the authors' `Find_Joint`).

        Repeat until nothing changes: add parents of the set that have an ancestor inside it
        (back-door parents), and for every member the ancestors of it that descend from its
        c-component (its maximal ancestral set within the c-component's descendants).
        """
        joint = set(group)
        while True:
            outside = {p for v in joint for p in self.parents(v)} - joint
            grown = joint | {p for p in outside if self.ancestors(p) & joint}
            grown |= {a for v in joint for a in self._ancestral_within_component(v)}
            if grown == joint:
                return self._ordered(joint)
            joint = grown

    def _ancestral_within_component(self, v: str) -> set[str]:
        allowed = {d for c in self._c_component_of(v) for d in self.descendants(c) | {c}}
        return nx.ancestors(self.dag.subgraph(allowed), v) | {v}

    def conditioning_parents(self, variables: Iterable[str]) -> tuple[str, ...]:
        """Parents of a variable set that lie outside it (taken from the data when training it)."""
        variables = set(variables)
        return self._ordered({p for v in variables for p in self.parents(v)} - variables)

    def training_steps(self) -> list[TrainingStep]:
        """H-nodes in a causal (topological) order, each with its joint and conditioning parents.

        A joint may contain variables of other H-nodes; those H-nodes are ordered before it
        (merged with it when that makes a cycle).
        """
        h = self.h_graph()
        while True:
            owner = {v: node for node in h for v in node}
            needs = [(owner[v], node) for node in h for v in self.joint_variables(node) if owner[v] != node]
            missing = [e for e in needs if not h.has_edge(*e)]
            if not missing:
                break
            h.add_edges_from(missing)
            h = self._merge_cycles(h)
        order = nx.lexicographical_topological_sort(h, key=lambda node: self.nodes.index(node[0]))
        steps = []
        for node in order:
            joint = self.joint_variables(node)
            steps.append(TrainingStep(node, joint, self.conditioning_parents(joint)))
        return steps


def random_admg(n: int, seed: int = 0, arcs_per_node: float | None = None,
                confounded_pairs: int | None = None) -> CausalGraph:
    """A random ADMG on `n` variables `X1..Xn`, as in the authors' scalability study.

    Defaults follow their notebook: `n/3` arcs per node (capped by the complete DAG) and `n/3`
    bidirected pairs, both drawn uniformly.
    """
    if n < 2:
        raise ValueError(f"n={n} must be >= 2")
    rng = np.random.default_rng(seed)
    names = [f"X{i + 1}" for i in range(n)]
    order = [names[i] for i in rng.permutation(n)]
    pairs = list(itertools.combinations(range(n), 2))
    n_arcs = min(len(pairs), int(round((arcs_per_node if arcs_per_node is not None else n / 3) * n)))
    arcs = [(order[i], order[j]) for i, j in (pairs[k] for k in rng.choice(len(pairs), n_arcs, replace=False))]
    n_conf = min(len(pairs), confounded_pairs if confounded_pairs is not None else n // 3)
    conf = [(names[i], names[j]) for i, j in (pairs[k] for k in rng.choice(len(pairs), n_conf, replace=False))]
    return CausalGraph(arcs, conf, nodes=names)


def scalability_table(sizes: Sequence[int] = (15, 20, 25, 30, 35, 40, 45, 50), graphs_per_size: int = 5,
                      seed: int = 0) -> list[dict[str, float]]:
    """For random ADMGs of each size: the largest number of generators trained together and the
    largest variable set of one training problem (means over `graphs_per_size` graphs).

    Joint training (one problem for the whole graph) trains all `n` generators together.
    """
    rows = []
    for n in sizes:
        mech, joint = [], []
        for k in range(graphs_per_size):
            steps = random_admg(n, seed=seed * 10_007 + n * 101 + k).training_steps()
            mech.append(max(len(s.generators) for s in steps))
            joint.append(max(len(s.variables) + len(s.conditions) for s in steps))
        rows.append({"nodes": n, "largest_group": float(np.mean(mech)),
                     "largest_training_set": float(np.mean(joint)), "joint_training": float(n)})
    return rows


# --------------------------------------------------------------------------- variables

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
            raise ValueError(f"image variable {self.name!r} needs shape (C, H, W) with H and W multiples "
                             f"of 4, got {self.shape}")
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
                raise ValueError(f"{self.name!r} is discrete: give class indices of shape (n,), "
                                 f"got {values.dtype} {tuple(values.shape)}")
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
            raise ValueError(f"{self.name!r} takes values 0..{self.size - 1}, got "
                             f"{sorted(set(values.flatten().tolist()))[:10]}")


def encode_rows(variables: Sequence[Variable], data: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Concatenate the encodings of `variables` from `data` into rows `(n, total width)`."""
    missing = [v.name for v in variables if v.name not in data]
    if missing:
        raise ValueError(f"data lacks the variables {missing}; it has {sorted(data)}")
    return torch.cat([v.encode(data[v.name]) for v in variables], dim=1)


def split_rows(variables: Sequence[Variable], rows: torch.Tensor) -> dict[str, torch.Tensor]:
    """Inverse of `encode_rows` (still encoded): name -> `(n, width)`."""
    parts = torch.split(rows, [v.width for v in variables], dim=1)
    return {v.name: part for v, part in zip(variables, parts)}


# --------------------------------------------------------------------------- generators

@dataclass
class DCMConfig:
    """Modular-DCM defaults from the authors' code (Rahman & Kocaoglu, ICML 2024):
    noise 128, confounder noise 128, G/D hidden [256, 256], WGAN-GP with lambda 10 and one critic
    step, Adam lr 1e-4 betas (0.5, 0.9) weight decay 1e-6, batch 200, 301 epochs, Gumbel temperature
    from 1 multiplied by exp(-rate * iteration) every 100 iterations, floor 0.1.

    Ours: `tau_rate` (the authors' rate is not stated), `image_channels` (conv generator width),
    `max_steps` (a cap on steps per training problem), `lr_decay` (linear decay to 0),
    `straight_through` (one-hot forward pass of the Gumbel-softmax).
    """

    noise_dim: int = 128
    confounder_dim: int = 128
    hidden: tuple[int, ...] = (256, 256)
    critic_hidden: tuple[int, ...] = (256, 256)
    image_channels: int = 32
    lr: float = 1e-4
    betas: tuple[float, float] = (0.5, 0.9)
    weight_decay: float = 1e-6
    gp_weight: float = 10.0
    critic_steps: int = 1
    batch_size: int = 200
    epochs: int = 301
    max_steps: int | None = None
    tau_start: float = 1.0
    tau_floor: float = 0.1
    tau_rate: float = 1e-3
    anneal_every: int = 100
    straight_through: bool = True
    lr_decay: bool = False
    seed: int = 0
    progress: bool = False

    def __post_init__(self) -> None:
        fields = ConfigFields(self)
        for name in ("noise_dim", "confounder_dim", "image_channels", "critic_steps", "anneal_every", "epochs",
                     "batch_size"):
            fields.integer(name, 1)
        fields.integer("max_steps", 1, optional=True)
        fields.number("lr", 0, low_open=True)
        fields.number("weight_decay", 0)
        fields.integer("seed", 0)
        fields.each("hidden", check_int, 1)
        fields.each("critic_hidden", check_int, 1)
        fields.each("betas", check_float, 0, 1, high_open=True)
        fields.number("gp_weight", 0)
        fields.number("tau_start", 0, low_open=True)
        fields.number("tau_floor", 0, self.tau_start, low_open=True)
        fields.number("tau_rate", 0)
        for name in ("straight_through", "lr_decay", "progress"):
            fields.boolean(name)
        if len(self.betas) != 2:
            raise ValueError(f"DCMConfig(betas={self.betas}): betas must be a pair (beta1, beta2); "
                             "pass e.g. (0.5, 0.9)")

    def train_config(self, desc: str) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr,
                           weight_decay=self.weight_decay, max_steps=self.max_steps, seed=self.seed,
                           progress=self.progress, desc=desc)


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
            nn.LeakyReLU(0.2), nn.Upsample(scale_factor=2), nn.Conv2d(channels, channels, 3, padding=1),
            nn.BatchNorm2d(channels), nn.LeakyReLU(0.2), nn.Upsample(scale_factor=2),
            nn.Conv2d(channels, c, 3, padding=1), nn.Sigmoid())

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

    def __init__(self, graph: CausalGraph, variables: Sequence[Variable] | Mapping[str, Variable],
                 config: DCMConfig | None = None) -> None:
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
            raise ValueError(f"generator for {name!r} takes parents/noise widths "
                             f"{generator.parent_width}/{generator.noise_width}, the graph needs "
                             f"{expected.parent_width}/{expected.noise_width}: build it with the same "
                             "DCMConfig and parents")
        generator.requires_grad_(False).eval()
        self.generators[name] = generator
        self.pretrained.add(name)

    def train(self, mode: bool = True) -> "DCM":
        super().train(mode)
        for name in self.pretrained:
            self.generators[name].eval()
        return self

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def generate(self, n: int, names: Iterable[str], given: Mapping[str, torch.Tensor] | None = None,
                 tau: float | None = None) -> dict[str, torch.Tensor]:
        """Ancestral sampling of `names` (encoded, `(n, width)` each); `given` holds encoded values
        used as they are (data for conditioning parents, or clamped interventions).

        Each confounder's noise is drawn once and shared by the generators it touches.
        """
        given = dict(given or {})
        names = set(names) - set(given)
        values = dict(given)
        device = self.device
        confounder_noise = {e: torch.randn(n, self.config.confounder_dim, device=device)
                            for e in self.graph.bidirected}
        for v in self.graph.nodes:
            if v not in names:
                continue
            parents = self.graph.parents(v)
            absent = [p for p in parents if p not in values]
            if absent:
                raise ValueError(f"cannot generate {v!r}: its parents {absent} are neither generated nor given")
            noise = torch.cat([torch.randn(n, self.config.noise_dim, device=device)]
                              + [confounder_noise[e] for e in self.graph.confounders(v)], dim=1)
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
                raise ValueError(f"do({name}=...) needs one class index 0..{var.size - 1}, got {value.tolist()}")
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
            draws = [self.sample(min(chunk, n - start), do={treatment: x})[target] for start in range(0, n, chunk)]
            rows.append(empirical_distribution([torch.cat(draws)], sizes[1:]))
        return np.stack(rows)

    def _discrete(self, name: str) -> Variable:
        self.graph.check_names([name])
        if self.variables[name].kind != "discrete":
            raise ValueError(f"{name!r} is {self.variables[name].kind}: distributions need a discrete variable")
        return self.variables[name]


# --------------------------------------------------------------------------- WGAN-GP training

class _StepModel(nn.Module):
    """What `fit` trains for one step: the DCM (some generators frozen) and the step's critic."""

    def __init__(self, dcm: DCM, critic: nn.Module) -> None:
        super().__init__()
        self.dcm, self.critic = dcm, critic


class WassersteinGP(Objective):
    """WGAN-GP on the joint of `step.variables` given `step.conditions` (taken from the batch).

    Each call: `critic_steps` critic updates (its own Adam) on
    `D(fake) - D(real) + lambda (|grad D(mix)| - 1)^2`, then the generator loss `-D(fake)` is
    back-propagated for `fit`'s optimizer, which holds only the trainable generators.
    """

    handles_backward = True

    def __init__(self, dcm: DCM, step: TrainingStep, config: DCMConfig) -> None:
        self.dcm, self.step, self.config = dcm, step, config
        self.columns = [dcm.variables[v] for v in step.variables + step.conditions]
        self.critic_optimizer: torch.optim.Optimizer | None = None
        self._saved_critic_optimizer: dict | None = None

    def __call__(self, model: _StepModel, batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real = batch[0].float()
        given = {k: v for k, v in split_rows(self.columns, real).items() if k in self.step.conditions}
        generated = self.dcm.generate(len(real), self.step.variables, given)
        fake = torch.cat([generated[v.name] for v in self.columns], dim=1)
        if self.critic_optimizer is None:
            self.critic_optimizer = torch.optim.Adam(model.critic.parameters(), lr=self.config.lr,
                                                     betas=self.config.betas, weight_decay=self.config.weight_decay)
            if self._saved_critic_optimizer is not None:
                self.critic_optimizer.load_state_dict(self._saved_critic_optimizer)
        for _ in range(self.config.critic_steps):
            critic_loss, distance = self._critic_update(model.critic, real, fake.detach())
        model.critic.requires_grad_(False)
        generator_loss = -model.critic(fake).float().mean()
        generator_loss.backward()
        model.critic.requires_grad_(True)
        return generator_loss.detach(), {"critic_loss": critic_loss, "wasserstein": distance,
                                         "tau": torch.tensor(self.dcm.tau)}

    def state_dict(self) -> dict:
        """The critic optimizer's state (for `fit`'s checkpoints)."""
        optimizer = self.critic_optimizer
        return {"critic_optimizer": optimizer.state_dict() if optimizer is not None else self._saved_critic_optimizer}

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


def gradient_penalty(critic: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """`mean((|grad_x D(x)| - 1)^2)` at random points `x` between real and fake rows `(n, d)`."""
    alpha = torch.rand(len(real), 1, device=real.device)
    mix = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(critic(mix).float().sum(), mix, create_graph=True)
    return ((grad.norm(dim=1) - 1) ** 2).mean()


class DCMSchedule(Hook):
    """Gumbel temperature and learning rates during one training problem.

    Every `anneal_every` steps `tau = max(floor, start * exp(-rate * step))`. With `lr_decay` both
    learning rates fall linearly to 0 over the run (ours, it steadies the end of GAN training).
    Also sets Adam's betas to the paper's (0.5, 0.9), which `TrainConfig` does not carry.
    """

    def __init__(self, dcm: DCM, objective: "WassersteinGP", config: DCMConfig) -> None:
        self.dcm, self.objective, self.config = dcm, objective, config

    def on_fit_start(self, state: TrainState) -> None:
        for group in state.optimizer.param_groups:
            group["betas"] = self.config.betas
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
            lr = c.lr * max(0.0, 1 - state.step / state.total_steps)
            for group in state.optimizer.param_groups + self.objective.critic_optimizer.param_groups:
                group["lr"] = lr


def _check_training_args(owner: str, dcm: DCM, data: Mapping[str, torch.Tensor], config: DCMConfig | None) -> None:
    check_type("dcm", dcm, DCM, owner=owner, hint="pass a DCM(graph, variables)")
    check_type("data", data, Mapping, owner=owner, hint="pass a dict {variable name: tensor of samples}")
    check_type("config", config, DCMConfig, owner=owner, optional=True, hint="pass a DCMConfig(...)")


def train_step(dcm: DCM, step: TrainingStep, data: Mapping[str, torch.Tensor],
               config: DCMConfig | None = None, hooks: Iterable[Hook] = (),
               checkpoint_path: str | None = None, resume: bool = False) -> History:
    """Train `step.generators` (all others frozen) to match the data's joint of `step.variables`
    given `step.conditions`, with `fit` and the `WassersteinGP` objective.

    `checkpoint_path` and `resume` are `TrainConfig`'s: the checkpoint holds the critic, both
    optimizers and the temperature, so a resumed step equals the uninterrupted one."""
    _check_training_args("train_step", dcm, data, config)
    config = config or dcm.config
    dcm.graph.check_names(step.generators + step.variables + step.conditions)
    pretrained = sorted(set(step.generators) & dcm.pretrained)
    if pretrained:
        raise ValueError(f"{pretrained} are plugged-in pretrained generators: they are not trained here")
    objective = WassersteinGP(dcm, step, config)
    rows = encode_rows(objective.columns, data)
    critic = mlp(rows.shape[1], config.critic_hidden, 1)
    model = _StepModel(dcm, critic)
    for name, gen in dcm.generators.items():
        gen.requires_grad_(name in step.generators)
    params = [p for name in step.generators for p in dcm.generators[name].parameters()]
    history = fit(model, Split(rows, torch.zeros(len(rows), dtype=torch.long)),
                  replace(config.train_config(f"train {'+'.join(step.generators)}"),
                          checkpoint_path=checkpoint_path, resume=resume), objective,
                  hooks=[DCMSchedule(dcm, objective, config), *hooks], params=params)
    dcm.requires_grad_(False)
    return history


def train_modular(dcm: DCM, data: Mapping[str, torch.Tensor], config: DCMConfig | None = None,
                  hooks: Iterable[Hook] = ()) -> dict[tuple[str, ...], History]:
    """Modular-DCM: train the H-nodes one after the other in causal order, earlier ones frozen.

    Steps whose generators are all plugged-in pretrained ones are skipped. Returns one
    `History` per trained step, keyed by the step's generators. Ctrl-C stops after the current
    step: its `History` has `interrupted=True` and the later steps are not trained.
    """
    _check_training_args("train_modular", dcm, data, config)
    steps = []
    for step in dcm.graph.training_steps():
        trainable = tuple(v for v in step.generators if v not in dcm.pretrained)
        if trainable:
            steps.append(TrainingStep(trainable, step.variables, step.conditions))
    histories = {}
    for i, step in enumerate(steps):
        histories[step.generators] = train_step(dcm, step, data, config, hooks)
        if histories[step.generators].interrupted:
            report_interrupt("groups", [s.generators for s in steps[:i]], [s.generators for s in steps[i:]])
            break
    return histories


def train_joint(dcm: DCM, data: Mapping[str, torch.Tensor], config: DCMConfig | None = None,
                hooks: Iterable[Hook] = ()) -> History:
    """The baseline: every (non-pretrained) generator trained at once on the joint of all variables."""
    _check_training_args("train_joint", dcm, data, config)
    nodes = dcm.graph.nodes
    step = TrainingStep(tuple(v for v in nodes if v not in dcm.pretrained), nodes, ())
    return train_step(dcm, step, data, config, hooks)


# --------------------------------------------------------------------------- ground truth and metrics

class TabularSCM:
    """A discrete structural causal model given by conditional probability tables.

    `cpts[v]` has shape `(*parent sizes, size of v)` over `parents[v]` (in that order); variables
    in `latent` are hidden from `sample`'s output. Exact distributions come from enumeration.
    """

    def __init__(self, sizes: Mapping[str, int], parents: Mapping[str, Sequence[str]],
                 cpts: Mapping[str, np.ndarray], latent: Iterable[str] = ()) -> None:
        self.sizes, self.parents = dict(sizes), {v: list(parents.get(v, [])) for v in sizes}
        self.latent = set(latent)
        self.cpts = {v: np.asarray(cpts[v], dtype=float) for v in sizes}
        for v in sizes:
            expected = tuple(self.sizes[p] for p in self.parents[v]) + (self.sizes[v],)
            if self.cpts[v].shape != expected or not np.allclose(self.cpts[v].sum(-1), 1):
                raise ValueError(f"cpt of {v!r} must have shape {expected} and rows summing to 1, "
                                 f"got shape {self.cpts[v].shape}")
        dag = nx.DiGraph([(p, v) for v in sizes for p in self.parents[v]])
        dag.add_nodes_from(sizes)
        self.order = list(nx.topological_sort(dag))

    @property
    def observed(self) -> list[str]:
        return [v for v in self.order if v not in self.latent]

    def _check_do(self, do: Mapping[str, int]) -> None:
        for name, value in do.items():
            if name not in self.sizes:
                raise ValueError(f"unknown intervention variable {name!r}: choose from {self.observed}")
            if not 0 <= int(value) < self.sizes[name]:
                raise ValueError(f"do({name}={value}): {name} takes values 0..{self.sizes[name] - 1}")

    def sample(self, n: int, do: Mapping[str, int] | None = None, seed: int = 0,
               include_latent: bool = False) -> dict[str, torch.Tensor]:
        """`n` joint samples as `int64` tensors `(n,)`, observational or under `do`."""
        do = dict(do or {})
        self._check_do(do)
        rng = np.random.default_rng(seed)
        values: dict[str, np.ndarray] = {}
        for v in self.order:
            if v in do:
                values[v] = np.full(n, int(do[v]))
                continue
            probs = self.cpts[v][tuple(values[p] for p in self.parents[v])]
            probs = np.broadcast_to(probs, (n, self.sizes[v]))
            values[v] = (rng.random((n, 1)) > probs.cumsum(axis=1)).sum(axis=1).clip(max=self.sizes[v] - 1)
        keep = self.order if include_latent else self.observed
        return {v: torch.as_tensor(values[v], dtype=torch.long) for v in keep}

    def distribution(self, targets: Sequence[str], do: Mapping[str, int] | None = None) -> np.ndarray:
        """The exact joint `P(targets | do)` as an array of shape `(sizes of targets)`."""
        do = dict(do or {})
        self._check_do(do)
        out = np.zeros([self.sizes[t] for t in targets])
        for assignment in itertools.product(*(range(self.sizes[v]) for v in self.order)):
            values = dict(zip(self.order, assignment))
            prob = 1.0
            for v in self.order:
                if v in do:
                    prob *= float(values[v] == int(do[v]))
                else:
                    prob *= self.cpts[v][tuple(values[p] for p in self.parents[v]) + (values[v],)]
            out[tuple(values[t] for t in targets)] += prob
        return out

    def interventional(self, target: str, treatment: str) -> np.ndarray:
        """Exact `P(target | do(treatment = x))`, shape `(treatment size, target size)`."""
        return np.stack([self.distribution([target], {treatment: x}) for x in range(self.sizes[treatment])])

    def conditional(self, target: str, given: str) -> np.ndarray:
        """Exact `P(target | given = x)` (plain conditioning), shape `(given size, target size)`."""
        joint = self.distribution([given, target])
        return joint / joint.sum(axis=1, keepdims=True)


def empirical_distribution(samples: Sequence[torch.Tensor], sizes: Sequence[int]) -> np.ndarray:
    """Joint frequencies of discrete samples `(n,)` each, as an array of shape `sizes`."""
    counts = np.zeros(sizes)
    np.add.at(counts, tuple(torch.as_tensor(s).long().numpy() for s in samples), 1)
    return counts / max(1, counts.sum())


def tvd(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance `0.5 * sum |p - q|` between two distributions of the same shape."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.shape != q.shape:
        raise ValueError(f"distributions of shapes {p.shape} and {q.shape} cannot be compared")
    return 0.5 * float(np.abs(p - q).sum())


def kl(p: np.ndarray, q: np.ndarray, eps: float = 1e-8) -> float:
    """`KL(p || q) = sum p log(p / q)` (q clipped at `eps`)."""
    p, q = np.asarray(p, float), np.asarray(q, float)
    if p.shape != q.shape:
        raise ValueError(f"distributions of shapes {p.shape} and {q.shape} cannot be compared")
    mask = p > 0
    return float((p[mask] * np.log(p[mask] / np.maximum(q[mask], eps))).sum())


def interventional_tvd(estimate: np.ndarray, truth: np.ndarray) -> float:
    """Mean over treatment values x of TVD(P(Y | do(x)) estimated, true); both `(x size, y size)`."""
    return float(np.mean([tvd(e, t) for e, t in zip(estimate, truth)]))


def front_door(data: Mapping[str, torch.Tensor], x: str, z: str, y: str, sizes: Mapping[str, int]) -> np.ndarray:
    """The front-door formula from samples: `P(y | do(x)) = sum_z P(z | x) sum_x' P(y | x', z) P(x')`.

    Returns shape `(size of x, size of y)`.
    """
    joint = empirical_distribution([data[x], data[z], data[y]], [sizes[x], sizes[z], sizes[y]])
    p_x = joint.sum(axis=(1, 2))
    p_z_given_x = joint.sum(axis=2) / np.maximum(p_x[:, None], 1e-12)
    p_y_given_xz = joint / np.maximum(joint.sum(axis=2, keepdims=True), 1e-12)
    inner = np.einsum("a,azy->zy", p_x, p_y_given_xz)
    return p_z_given_x @ inner


def naive_conditional(data: Mapping[str, torch.Tensor], x: str, y: str, sizes: Mapping[str, int]) -> np.ndarray:
    """`P(y | x)` read off the samples (what plain conditioning gives), shape `(size x, size y)`."""
    joint = empirical_distribution([data[x], data[y]], [sizes[x], sizes[y]])
    return joint / np.maximum(joint.sum(axis=1, keepdims=True), 1e-12)


# --------------------------------------------------------------------------- the two demos

def front_door_scm(confounding: float = 0.8, mediation: float = 0.75) -> tuple[TabularSCM, CausalGraph]:
    """Binary front-door model: hidden `U -> X`, `U -> Y`; `X -> Z -> Y`. Graph `X -> Z -> Y, X <-> Y`.

    `P(X=1 | U=u)` is `confounding` when u = 1 (else 1 - it); `P(Z = X) = mediation`;
    `P(Y=1 | Z, U) = 0.1 + 0.3 Z + 0.5 U`.
    """
    if not (0.5 <= confounding < 1 and 0.5 <= mediation < 1):
        raise ValueError(f"confounding={confounding} and mediation={mediation} must lie in [0.5, 1)")
    def bern(p):
        return np.stack([1 - np.asarray(p), np.asarray(p)], axis=-1)
    cpts = {"U": bern(0.5), "X": bern([1 - confounding, confounding]),
            "Z": bern([1 - mediation, mediation]),
            "Y": bern(np.array([[0.1, 0.6], [0.4, 0.9]]))}
    scm = TabularSCM({"U": 2, "X": 2, "Z": 2, "Y": 2}, {"X": ["U"], "Z": ["X"], "Y": ["Z", "U"]}, cpts,
                     latent=["U"])
    return scm, CausalGraph.parse("X -> Z, Z -> Y, X <-> Y")


COLOURS = np.array([[1.0, 0.15, 0.15], [0.15, 0.85, 0.15], [0.2, 0.35, 1.0]])
COLOUR_NAMES = ("red", "green", "blue")


def coloured_digits_scm(flip: float = 0.2, digits: int = 3) -> tuple[TabularSCM, CausalGraph]:
    """Semi-synthetic front-door model behind the coloured-digit images.

    Hidden `U`; `D` (a colour, 0..2) depends on U; the image shows digit `K` (uniform over
    `digits` classes, hidden) tinted with colour `C`, which equals D except with probability
    `flip`; the binary attribute `A` depends on the image's colour and on U. Observed graph:
    `D -> Image -> A, D <-> A` (C and K live inside the image).
    """
    if not (0 <= flip < 1 and 1 <= digits <= 10):
        raise ValueError(f"flip={flip} must lie in [0, 1) and digits={digits} in 1..10")
    p_d = np.array([[0.6, 0.3, 0.1], [0.1, 0.3, 0.6]])
    p_c = np.full((3, 3), flip / 2) + np.eye(3) * (1 - 3 * flip / 2)
    p_a = np.array([[0.1, 0.6], [0.3, 0.8], [0.5, 0.95]])                     # P(A=1 | C, U)
    cpts = {"U": np.array([0.5, 0.5]), "D": p_d, "C": p_c, "K": np.full(digits, 1 / digits),
            "A": np.stack([1 - p_a, p_a], axis=-1)}
    scm = TabularSCM({"U": 2, "D": 3, "C": 3, "K": digits, "A": 2},
                     {"D": ["U"], "C": ["D"], "A": ["C", "U"]}, cpts, latent=["U", "C", "K"])
    return scm, CausalGraph.parse("D -> Image, Image -> A, D <-> A")


def digit_pool(images: torch.Tensor, labels: torch.Tensor, digits: int = 3) -> list[torch.Tensor]:
    """Grey images `(n, 1, H, W)` (any scale) of classes `0..digits-1`, each rescaled to [0, 1]."""
    lo = images.amin(dim=(1, 2, 3), keepdim=True)
    hi = images.amax(dim=(1, 2, 3), keepdim=True)
    unit = (images - lo) / (hi - lo).clamp_min(1e-6)
    pool = [unit[labels == k] for k in range(digits)]
    if any(len(p) == 0 for p in pool):
        raise ValueError(f"every digit class 0..{digits - 1} needs at least one image")
    return pool


def render_coloured_digits(colour: torch.Tensor, digit: torch.Tensor, pool: Sequence[torch.Tensor],
                           seed: int = 0) -> torch.Tensor:
    """A random grey image of each `digit (n,)` from `pool`, tinted with `COLOURS[colour]`: `(n, 3, H, W)`."""
    gen = torch.Generator().manual_seed(seed)
    out = torch.empty(len(colour), 3, *pool[0].shape[-2:])
    for k, images in enumerate(pool):
        idx = (digit == k).nonzero().flatten()
        pick = torch.randint(len(images), (len(idx),), generator=gen)
        out[idx] = images[pick] * torch.as_tensor(COLOURS, dtype=torch.float32)[colour[idx]][:, :, None, None]
    return out


def coloured_digits_data(scm: TabularSCM, pool: Sequence[torch.Tensor], n: int, seed: int = 0,
                         do: Mapping[str, int] | None = None) -> dict[str, torch.Tensor]:
    """Observed samples `D, Image, A` (plus the hidden `C`, `K`, for reading out) of the coloured digits."""
    values = scm.sample(n, do=do, seed=seed, include_latent=True)
    values["Image"] = render_coloured_digits(values["C"], values["K"], pool, seed)
    return {k: values[k] for k in ("D", "Image", "A", "C", "K")}


def pretrained_image_generator(data: Mapping[str, torch.Tensor], variables: Sequence[Variable],
                               config: DCMConfig, cache: str | Path | None = None,
                               graph: CausalGraph | None = None) -> MechanismGenerator:
    """A conditional image generator `Image | D` trained once on its own (WGAN-GP) and cached.

    The cache file is named by a hash of the config, the variables and the data, under `cache`
    (default: `$XDG_CACHE_HOME/modlearn/causal`, i.e. `~/.cache/modlearn/causal`).
    """
    graph = graph or CausalGraph.parse("D -> Image")
    dcm = DCM(graph, variables, config)
    digest = hashlib.sha1(repr((asdict(config), variables, graph)).encode())
    for v in variables:
        digest.update(data[v.name].contiguous().numpy().tobytes())
    folder = Path(cache) if cache else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "modlearn" / "causal"
    path = folder / f"image_generator_{digest.hexdigest()[:12]}.pt"
    image = next(v.name for v in variables if v.kind == "image")
    if path.exists():
        dcm.generators[image].load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        print(f"loaded the cached conditional image generator {path}")
    else:
        step = next(s for s in graph.training_steps() if image in s.generators)
        train_step(dcm, step, data, config)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(dcm.generators[image].state_dict(), path)
        print(f"trained the conditional image generator once and cached it in {path}")
    return dcm.generators[image].cpu()


# --------------------------------------------------------------------------- pictures

def draw_graph(graph: CausalGraph, ax=None, title: str | None = None, groups: Sequence[Sequence[str]] = ()):
    """The ADMG: directed edges solid, bidirected (confounders) dashed red; nodes coloured by `groups`."""
    fig, ax = _figure(ax, (3.6, 2.6))
    dag = graph.dag.copy()
    for v in graph.nodes:                      # layer = length of the longest path from a root
        dag.nodes[v]["layer"] = max([dag.nodes[p]["layer"] + 1 for p in graph.parents(v)], default=0)
    pos = nx.multipartite_layout(dag, subset_key="layer")
    colour_of = {v: f"C{i}" for i, g in enumerate(groups) for v in g}
    nx.draw_networkx_nodes(dag, pos, ax=ax, node_size=700,
                           node_color=[colour_of.get(v, "lightgrey") for v in dag], alpha=0.6)
    nx.draw_networkx_labels(dag, pos, ax=ax, font_size=9)
    nx.draw_networkx_edges(dag, pos, ax=ax, node_size=700, arrowsize=15)
    nx.draw_networkx_edges(nx.Graph(list(graph.bidirected)), pos, ax=ax, style="dashed", edge_color="crimson",
                           connectionstyle="arc3,rad=0.4", arrows=True, arrowstyle="<|-|>", node_size=700)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    return fig


def plot_interventional(distributions: Mapping[str, np.ndarray], treatment: str = "X", outcome: str = "Y",
                        value: int = 1, ax=None):
    """Bars of `P(outcome = value | do(treatment = x))` for each x, one bar per estimate
    (`distributions[name]` has shape `(treatment size, outcome size)`)."""
    fig, ax = _figure(ax, (5.5, 3.0))
    series = {name: np.asarray(d)[:, value] for name, d in distributions.items()}
    _grouped_bars(ax, series, [f"do({treatment}={x})" for x in range(len(next(iter(series.values()))))])
    ax.set_ylabel(f"P({outcome}={value} | ...)")
    fig.tight_layout()
    return fig


def compare_distributions(distributions: Mapping[str, np.ndarray], variable: str, title: str | None = None,
                          ax=None):
    """Side-by-side bars of several distributions `(size,)` of one discrete variable."""
    fig, ax = _figure(ax, (4.5, 2.8))
    size = len(next(iter(distributions.values())))
    _grouped_bars(ax, distributions, [f"{variable}={k}" for k in range(size)])
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig


def _grouped_bars(ax, series: Mapping[str, np.ndarray], ticks: Sequence[str]) -> None:
    width = 0.8 / len(series)
    for i, (name, values) in enumerate(series.items()):
        xs = np.arange(len(values)) + (i - (len(series) - 1) / 2) * width
        ax.bar_label(ax.bar(xs, np.asarray(values), width, label=name), fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(ticks)), ticks)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=7, loc="upper left")


def plot_scalability(rows: Sequence[Mapping[str, float]], ax=None):
    """Largest group of generators trained together vs graph size (Modular-DCM vs joint training)."""
    fig, ax = _figure(ax, (5, 3.2))
    n = [r["nodes"] for r in rows]
    ax.plot(n, [r["joint_training"] for r in rows], "s--", label="joint training (all N)")
    ax.plot(n, [r["largest_training_set"] for r in rows], "^:", label="Modular-DCM: largest variable set")
    ax.plot(n, [r["largest_group"] for r in rows], "o-", label="Modular-DCM: largest group trained")
    ax.set_xlabel("variables N in the random ADMG")
    ax.set_ylabel("mechanisms / variables")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _figure(ax, size):
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
        return fig, ax
    return ax.figure, ax


def format_rows(rows: Sequence[Mapping[str, object]]) -> str:
    """A small text table (one line per row, columns from the first row)."""
    keys = list(rows[0])
    cells = [[f"{r[k]:.3g}" if isinstance(r[k], float) else str(r[k]) for k in keys] for r in rows]
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(keys)]
    lines = ["  ".join(k.ljust(w) for k, w in zip(keys, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


__all__ = [
    "CausalGraph", "TrainingStep", "Variable", "DCMConfig", "MechanismGenerator", "DCM", "WassersteinGP",
    "DCMSchedule", "TabularSCM", "train_step", "train_modular", "train_joint", "random_admg",
    "scalability_table", "tvd", "kl", "interventional_tvd", "front_door", "naive_conditional",
    "empirical_distribution", "front_door_scm", "coloured_digits_scm", "coloured_digits_data",
    "digit_pool", "render_coloured_digits", "pretrained_image_generator", "draw_graph",
    "plot_interventional", "compare_distributions", "plot_scalability", "format_rows", "encode_rows", "split_rows",
]
