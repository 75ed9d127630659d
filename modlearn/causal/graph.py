"""Causal graphs with latent confounders: c-components, the H-graph and the modular training order.

Rahman & Kocaoglu, "Modular Learning of Deep Causal Generative Models for High-dimensional
Causal Inference", ICML 2024 (arXiv 2401.01426; authors' code Musfiqshohan/Modular-DCM).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np


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

    def __init__(
        self,
        directed: Iterable[tuple[str, str]],
        bidirected: Iterable[tuple[str, str]] = (),
        nodes: Iterable[str] | None = None,
    ) -> None:
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
            raise ValueError(
                f"the directed edges form a cycle {' -> '.join(cycle + cycle[:1])}: "
                "a causal graph must be acyclic (model feedback with a bidirected edge)"
            )
        self.bidirected = tuple(dict.fromkeys(tuple(sorted(e)) for e in bidirected))
        self.nodes = tuple(nx.lexicographical_topological_sort(self.dag, key=named.index))

    @classmethod
    def parse(cls, text: str) -> CausalGraph:
        """`"X -> Z, Z -> Y, X <-> Y"` (commas, semicolons or new lines between edges)."""
        directed, bidirected = [], []
        for part in filter(None, (p.strip() for p in re.split(r"[,;\n]", text))):
            match = re.fullmatch(r"(\w+)\s*(<->|->|<-)\s*(\w+)", part)
            if not match:
                raise ValueError(f"cannot read edge {part!r}: write 'A -> B', 'A <- B' or 'A <-> B'")
            a, arrow, b = match.groups()
            {"->": directed, "<-": directed, "<->": bidirected}[arrow].append(
                (b, a) if arrow == "<-" else (a, b)
            )
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
        merged = {
            i: self._ordered(v for node in condensed.nodes[i]["members"] for v in node) for i in condensed
        }
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


def random_admg(
    n: int, seed: int = 0, arcs_per_node: float | None = None, confounded_pairs: int | None = None
) -> CausalGraph:
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
    arcs = [
        (order[i], order[j]) for i, j in (pairs[k] for k in rng.choice(len(pairs), n_arcs, replace=False))
    ]
    n_conf = min(len(pairs), confounded_pairs if confounded_pairs is not None else n // 3)
    conf = [
        (names[i], names[j]) for i, j in (pairs[k] for k in rng.choice(len(pairs), n_conf, replace=False))
    ]
    return CausalGraph(arcs, conf, nodes=names)


def scalability_table(
    sizes: Sequence[int] = (15, 20, 25, 30, 35, 40, 45, 50), graphs_per_size: int = 5, seed: int = 0
) -> list[dict[str, float]]:
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
        rows.append(
            {
                "nodes": n,
                "largest_group": float(np.mean(mech)),
                "largest_training_set": float(np.mean(joint)),
                "joint_training": float(n),
            }
        )
    return rows
