"""House rules a reader of the package would notice at once: every public function says what it
returns, and no module holds more than 500 lines (one concern per file)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import modlearn

PACKAGE = Path(modlearn.__file__).parent
MAX_LINES = 500


def public_functions() -> dict[str, object]:
    """`{"module.name": function}` for every public function and public method defined in the package."""
    found = {}
    for info in pkgutil.walk_packages(modlearn.__path__, prefix="modlearn."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__:
                continue
            if inspect.isfunction(obj):
                found[f"{module.__name__}.{name}"] = obj
            elif inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and inspect.isfunction(member):
                        found[f"{module.__name__}.{name}.{attr}"] = member
    return found


def test_every_public_function_has_a_return_annotation():
    functions = public_functions()
    assert len(functions) > 300, "the walk found too few functions: is the package importable?"
    missing = sorted(n for n, f in functions.items() if "return" not in f.__annotations__)
    assert not missing, f"public functions without a return annotation: {missing}"


def test_no_module_over_500_lines():
    sizes = {
        p.relative_to(PACKAGE).as_posix(): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")
    }
    assert len(sizes) > 100
    assert not {p: n for p, n in sizes.items() if n > MAX_LINES}, sorted(
        sizes.items(), key=lambda kv: -kv[1]
    )[:5]
