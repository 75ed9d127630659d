"""Exercise checkers (ARENA style): write the core of a method, check it, then use the library's.

`check(name, your_function)` compares your function with the reference on named test cases and
explains the first difference; `solution(name)` is the reference; `EXERCISES` lists every exercise
of the series (name -> `Exercise`: notebook, title, difficulty, minutes, reference, cases).
"""

from . import nb01, nb02, nb03, nb04, nb05, nb06, nb07, nb08, nb09
from .core import (
    EXERCISES,
    FAILED,
    NOT_IMPLEMENTED,
    PASSED,
    CheckFailed,
    Exercise,
    check,
    compare_values,
    exercises_of,
    register,
    solution,
)
from .nb01 import (
    autograd_gradients,
    formula_gradients,
    formula_vs_autograd,
    hooked_saved_bytes,
    meter_saved_bytes,
    two_layer_loss,
)

__all__ = [
    "EXERCISES",
    "FAILED",
    "NOT_IMPLEMENTED",
    "PASSED",
    "CheckFailed",
    "Exercise",
    "autograd_gradients",
    "check",
    "compare_values",
    "exercises_of",
    "formula_gradients",
    "formula_vs_autograd",
    "hooked_saved_bytes",
    "meter_saved_bytes",
    "nb01",
    "nb02",
    "nb03",
    "nb04",
    "nb05",
    "nb06",
    "nb07",
    "nb08",
    "nb09",
    "register",
    "solution",
    "two_layer_loss",
]
