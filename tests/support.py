"""What the tests share besides fixtures: the checkout's paths, the test budget and small hooks.

A uniquely named module, imported as `from support import ROOT`: `conftest` is not importable by name
once `tests/platforms/conftest.py` exists (both would be the module `conftest`).
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import ModuleType

from modlearn.train import Hook

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
BUILD = ROOT / "build"
TEST_BUDGET = os.environ.get("MODLEARN_BUDGET", "smoke")


class InterruptAt(Hook):
    """A `fit` hook that raises `KeyboardInterrupt` (as Ctrl-C would) after step `step`."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_end(self, state) -> None:
        if state.step == self.step:
            raise KeyboardInterrupt


def load_tool(name: str) -> ModuleType:
    """The maintainers' script `tools/<name>.py` as a module (it is not part of the package)."""
    spec = importlib.util.spec_from_file_location(f"tools_{name}", ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
