"""Imports run one way: base -> viz -> train -> methods -> front. Read with `ast`, so lazy
(function-level) and `TYPE_CHECKING` imports count as much as top-level ones."""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "modlearn"

# The layers: core -> methods -> course -> the package's face. A module may import modules of its own
# layer or a lower one, never a higher one. A sub-package's modules (`local.train`) take their package's
# layer (`local`); inside a package, and between packages of one layer, `test_no_import_cycles` keeps the
# order one way.
CORE = {"env": 0, "validate": 0, "interrupts": 0, "results": 0, "models": 0.5, "data": 0.5, "viz": 1}
LOOP = {"train": 2, "distributed": 2.1, "api": 2.5}
METHODS = {m: 3 for m in ("local", "incubation", "cluster", "nemo", "bimt", "circuits", "causal")}
COURSE = {m: 4 for m in ("claims", "checks", "scoreboard", "widgets", "series")}
LAYERS = {**CORE, **LOOP, **METHODS, **COURSE, "__init__": 5}


def layer_of(module: str) -> float:
    """The layer of `module` (`local.train` -> the layer of `local`); 99 for a unit with no layer."""
    return LAYERS.get(module.split(".")[0], 99)


def modlearn_imports(source: str, module: str) -> set[str]:
    """Names of the `modlearn` modules that `source` (module `modlearn.<module>`, dotted inside a
    sub-package) imports anywhere, as `package.module` for modules of a sub-package."""
    package = _package_of(module)
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level == 0 and (node.module or "").split(".")[0] != "modlearn":
                continue
            parts = node.module.split(".") if node.module else []
            base = parts[1:] if node.level == 0 else package[: len(package) - node.level + 1] + parts
            if node.module in (None, "modlearn"):  # `from . import viz`: the names are modules
                found.update(".".join(base + [alias.name]) for alias in node.names)
            else:
                found.add(".".join(base))
        elif isinstance(node, ast.Import):
            found.update(
                alias.name.removeprefix("modlearn.")
                for alias in node.names
                if alias.name.startswith("modlearn.")
            )
    return found - {module}


def _package_of(module: str) -> list[str]:
    """The sub-package path a module lives in: `[]` for `train`, `["causal"]` for `causal.graph` and for
    `causal` itself (a package's `__init__`) when it is a directory."""
    parts = module.split(".")
    return parts if (PACKAGE / Path(*parts)).is_dir() else parts[:-1]


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """`modlearn/train.py` -> `train`, `modlearn/causal/graph.py` -> `causal.graph`,
    `modlearn/causal/__init__.py` -> `causal` (the top-level `__init__` stays `__init__`)."""
    parts = path.relative_to(package).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)


@functools.cache
def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """`{module: modlearn modules it imports}` for every `modlearn/**/*.py`."""
    names = {module_name(path, package): path for path in sorted(package.rglob("*.py"))}
    return {name: modlearn_imports(path.read_text(), name) for name, path in names.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as `[a, b, ..., a]`, or None (depth-first search)."""
    state: dict[str, str] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt) :] + [nxt] if nxt in path else [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [nxt])):
                return cycle
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start, [start])):
            return cycle
    return None


def test_the_parser_sees_lazy_relative_and_absolute_imports():
    source = (
        "from . import viz, data\nfrom .train import fit\nimport modlearn.cluster\n"
        "def f():\n    from .bimt import BioMLP\n    from modlearn.nemo import x\n    import numpy\n"
    )
    assert modlearn_imports(source, "m") == {"viz", "data", "train", "cluster", "bimt", "nemo"}


def test_the_parser_names_sub_package_modules_by_their_dotted_path():
    source = (
        "from .graph import CausalGraph\nfrom ..train import fit\nfrom .. import viz\n"
        "import modlearn.causal.plots\nfrom modlearn.causal.scm import tvd\n"
    )
    assert modlearn_imports(source, "causal.training") == {
        "causal.graph",
        "train",
        "viz",
        "causal.plots",
        "causal.scm",
    }
    assert modlearn_imports("from .causal import DCM\nfrom .causal.plots import draw_graph\n", "widgets") == {
        "causal",
        "causal.plots",
    }
    assert modlearn_imports("from . import graph\nfrom modlearn import viz\n", "causal.scm") == {
        "causal.graph",
        "viz",
    }
    assert module_name(PACKAGE / "causal" / "__init__.py") == "causal"
    assert module_name(PACKAGE / "causal" / "graph.py") == "causal.graph"
    assert module_name(PACKAGE / "__init__.py") == "__init__"


def test_the_cycle_finder_finds_a_three_module_circle():
    assert find_cycle({"train": {"viz"}, "viz": {"cluster"}, "cluster": {"train"}}) == [
        "cluster",
        "train",
        "viz",
        "cluster",
    ]
    assert find_cycle({"train": {"data"}, "viz": {"models"}, "data": set(), "models": set()}) is None


def test_no_import_cycles():
    cycle = find_cycle(import_graph())
    assert cycle is None, f"import cycle: {' -> '.join(cycle)}"


def test_every_module_has_a_layer():
    unknown = sorted(m for m in import_graph() if layer_of(m) == 99)
    assert not unknown, f"modules {unknown} have no layer in tests/test_imports.py::LAYERS: add their unit"


@pytest.mark.parametrize("module", sorted(import_graph()))
def test_imports_point_down_the_layers(module):
    upward = sorted(m for m in import_graph()[module] if layer_of(m) > layer_of(module))
    assert not upward, f"modlearn.{module} (layer {layer_of(module)}) imports higher layers: {upward}"


def test_a_method_never_imports_the_course_layer():
    graph = import_graph()
    leaks = {m: sorted(i for i in graph[m] if layer_of(i) == 4) for m in graph if layer_of(m) == 3}
    assert not any(leaks.values()), {m: v for m, v in leaks.items() if v}


def test_viz_imports_nothing_above_the_models():
    assert import_graph()["viz"] <= {"data", "models"}


def test_the_loop_extension_points_are_exported():
    import modlearn as ml

    for name in ("Objective", "Regularized", "CrossEntropy", "Hook", "TrainState", "iterate_batches", "fit"):
        assert name in ml.__all__ and getattr(ml, name) is not None
    assert [name for name in ml.__all__ if not hasattr(ml, name)] == []


def test_maintainers_tools_stay_outside_the_package():
    assert not (PACKAGE / "platforms.py").exists()
    assert (PACKAGE.parent / "tools" / "links.py").exists()
