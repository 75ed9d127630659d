"""Imports run one way: base -> viz -> train -> methods -> front. Read with `ast`, so lazy
(function-level) and `TYPE_CHECKING` imports count as much as top-level ones."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "modlearn"

# A module may import modules of its own layer or of a lower one, never of a higher one.
LAYERS = {
    "env": 0, "data": 0, "models": 0, "results": 0, "interrupts": 0, "validate": 0, "claims": 0,
    "viz": 1,
    "train": 2,
    "local": 3, "incubation": 3, "cluster": 3, "nemo": 3, "bimt": 3, "circuits": 3, "causal": 3,
    "widgets": 4, "series": 4, "checks": 4, "__init__": 5,
}


def modlearn_imports(source: str, module: str) -> set[str]:
    """Names of the `modlearn` modules that `source` (module `modlearn.<module>`) imports anywhere."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").split(".")[0] != "modlearn":
                continue
            base = (node.module or "").removeprefix("modlearn").lstrip(".")
            if base:
                found.add(base.split(".")[0])
            else:
                found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names
                         if alias.name.startswith("modlearn."))
    return found - {module}


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """`{module: modlearn modules it imports}` for every `modlearn/*.py`."""
    return {path.stem: modlearn_imports(path.read_text(), path.stem) for path in sorted(package.glob("*.py"))}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as `[a, b, ..., a]`, or None (depth-first search)."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_parser_sees_lazy_relative_and_absolute_imports():
    source = ("from . import viz, data\nfrom .train import fit\nimport modlearn.cluster\n"
              "def f():\n    from .bimt import BioMLP\n    from modlearn.nemo import x\n    import numpy\n")
    assert modlearn_imports(source, "m") == {"viz", "data", "train", "cluster", "bimt", "nemo"}


def test_the_cycle_finder_finds_a_three_module_circle():
    assert find_cycle({"train": {"viz"}, "viz": {"cluster"}, "cluster": {"train"}}) == [
        "cluster", "train", "viz", "cluster"]
    assert find_cycle({"train": {"data"}, "viz": {"models"}, "data": set(), "models": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_every_module_has_a_layer():
    unknown = sorted(set(import_graph()) - set(LAYERS))
    assert not unknown, f"modules {unknown} have no layer in tests/test_imports.py::LAYERS: add them"


@pytest.mark.parametrize("module", sorted(LAYERS))
def test_imports_point_down_the_layers(module):
    graph = import_graph()
    upward = sorted(m for m in graph[module] if LAYERS.get(m, 99) > LAYERS[module])
    assert not upward, f"modlearn.{module} (layer {LAYERS[module]}) imports higher layers: {upward}"


def test_viz_imports_nothing_above_the_models():
    assert import_graph()["viz"] <= {"data", "models"}


def test_the_loop_extension_points_are_exported():
    import modlearn as ml

    for name in ("Objective", "Regularized", "CrossEntropy", "Hook", "TrainState", "iterate_batches", "fit"):
        assert name in ml.__all__ and getattr(ml, name) is not None
    assert [name for name in ml.__all__ if not hasattr(ml, name)] == []
