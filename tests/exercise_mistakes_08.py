"""Plausible mistakes in notebook 08's exercises; each must fail its checker (tests/test_exercises.py)."""

import networkx as nx
import numpy as np
import torch

from modlearn import causal


def _tables(data, x, z, y, sizes):
    joint = causal.empirical_distribution([data[x], data[z], data[y]], [sizes[x], sizes[z], sizes[y]])
    p_x = joint.sum(axis=(1, 2))
    p_z_given_x = joint.sum(axis=2) / p_x[:, None]
    p_y_given_xz = joint / joint.sum(axis=2, keepdims=True)
    return joint, p_x, p_z_given_x, p_y_given_xz


def _front_door_without_the_sum_over_x(data, x, z, y, sizes):
    _, _, p_z_given_x, p_y_given_xz = _tables(data, x, z, y, sizes)
    return np.einsum("az,azy->ay", p_z_given_x, p_y_given_xz)  # = P(y | x): plain conditioning


def _front_door_with_p_x_given_z(data, x, z, y, sizes):
    joint, _, p_z_given_x, p_y_given_xz = _tables(data, x, z, y, sizes)
    p_xz = joint.sum(axis=2)
    p_x_given_z = p_xz / p_xz.sum(axis=0, keepdims=True)
    return p_z_given_x @ np.einsum("az,azy->zy", p_x_given_z, p_y_given_xz)


def _front_door_with_p_z(data, x, z, y, sizes):
    joint, p_x, _, p_y_given_xz = _tables(data, x, z, y, sizes)
    p_z = joint.sum(axis=(0, 2))
    inner = np.einsum("a,azy->zy", p_x, p_y_given_xz)
    return np.tile(p_z @ inner, (sizes[x], 1))


def _components_of(graph, edges):
    joined = nx.Graph()
    joined.add_nodes_from(graph.nodes)
    joined.add_edges_from(edges)
    comps = [tuple(v for v in graph.nodes if v in c) for c in nx.connected_components(joined)]
    return sorted(comps, key=lambda c: graph.nodes.index(c[0]))


def _components_through_directed_edges_too(graph):
    return _components_of(graph, [*graph.bidirected, *graph.dag.edges])


def _components_of_confounded_variables_only(graph):
    return [c for c in _components_of(graph, graph.bidirected) if len(c) > 1]


def _components_in_alphabetical_order(graph):
    return sorted(tuple(sorted(c)) for c in _components_of(graph, graph.bidirected))


def _penalty(critic, real, fake, alpha, create_graph=True, per_row=True, squared_norm=False):
    points = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(points).sum(), points, create_graph=create_graph)
    norm = grad.norm(dim=1) if per_row else grad.norm()
    return (((norm**2 if squared_norm else norm) - 1) ** 2).mean()


def _penalty_without_create_graph(critic, real, fake, alpha):
    return _penalty(critic, real, fake, alpha, create_graph=False)


def _penalty_with_one_norm_for_the_batch(critic, real, fake, alpha):
    return _penalty(critic, real, fake, alpha, per_row=False)


def _penalty_on_the_squared_norm(critic, real, fake, alpha):
    return _penalty(critic, real, fake, alpha, squared_norm=True)


MISTAKES = {
    "front_door": [
        ("no sum over x' (plain conditioning)", _front_door_without_the_sum_over_x, "values differ"),
        ("P(x' | z) instead of P(x')", _front_door_with_p_x_given_z, "values differ"),
        ("P(z) instead of P(z | x)", _front_door_with_p_z, "values differ"),
    ],
    "c_components": [
        ("directed edges joined too", _components_through_directed_edges_too, "item"),
        ("unconfounded variables left out", _components_of_confounded_variables_only, "sequence of"),
        ("components in alphabetical order", _components_in_alphabetical_order, "random graph"),
    ],
    "gradient_penalty": [
        (
            "no create_graph: the penalty cannot train the critic",
            _penalty_without_create_graph,
            "create_graph",
        ),
        ("one gradient norm for the whole batch", _penalty_with_one_norm_for_the_batch, "expected"),
        ("the squared norm penalized", _penalty_on_the_squared_norm, "expected"),
    ],
}
