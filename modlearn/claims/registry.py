"""Every notebook's claims and key-results line, gathered from the `nbXX` modules."""

from __future__ import annotations

from . import nb00, nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08, nb09
from .claim import Claim

_NOTEBOOKS = {
    "00_tour": nb00,
    "01_e2e_backprop": nb01,
    "02_local_training": nb02,
    "03_deep_incubation": nb03,
    "04_clusterability": nb04,
    "05_nemo": nb05,
    "06_bimt": nb06,
    "07_circuit_discovery": nb07,
    "08_modular_dcm": nb08,
    "09_scoreboard": nb09,
}
CLAIMS: dict[str, list[Claim]] = {notebook: module.CLAIMS for notebook, module in _NOTEBOOKS.items()}
"""Per notebook, the claims of its text (`tests/test_notebooks.py` asserts each after executing it)."""
KEY_RESULTS: dict[str, str] = {notebook: module.KEY_RESULT for notebook, module in _NOTEBOOKS.items()}
"""One line per notebook for the table of key results (`make run`, build/results.md, the README),
`str.format` fields naming recorded values."""
