"""Exercises: the registry, the checker and the comparison that explains a failure.

An exercise is a function the learner writes (the core lines of a method) and a reference with the
same signature, usually a thin wrapper around the library's own function. `check(name, fn)` calls
both on the exercise's test cases (random inputs and edge cases, each with a name) and compares the
results. It never raises: it prints a verdict ("passed", "not implemented yet", or the failing case
with expected vs got), records it as `exercise_<name>` with `ml.record`, and returns it, so the
notebook can go on with the reference whatever the learner wrote.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from ..results import record

PASSED, NOT_IMPLEMENTED, FAILED = "passed", "not implemented", "failed"

Case = tuple[str, tuple, dict]
"""One test case: `(name, positional args, keyword args)`."""


class CheckFailed(AssertionError):
    """A learner's result differs from the reference's; the message names the case and the difference."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a notebook.

    `reference` has the signature the learner's function must have; `cases()` returns the test cases
    (fresh tensors each call); `compare(got, expected, case)` raises `CheckFailed` on a difference
    (default: `compare_values` with `atol`/`rtol`). `difficulty` is 1-3 (stars) and `minutes` the time
    a learner should expect to spend. `solution` is a worked solution written the way the learner
    would (default: `reference`), when the reference is computed another way (e.g. by autograd).
    """

    name: str
    notebook: str
    title: str
    difficulty: int
    minutes: int
    reference: Callable[..., Any]
    cases: Callable[[], Iterable[Case]]
    atol: float = 1e-6
    rtol: float = 1e-5
    compare: Callable[[Any, Any, str], None] | None = field(default=None)
    solution: Callable[..., Any] | None = field(default=None)

    def run(self, fn: Callable[..., Any]) -> None:
        """Raise `CheckFailed` on the first case where `fn` differs from the reference
        (`NotImplementedError` from `fn` propagates)."""
        for case, args, kwargs in self.cases():
            expected = self.reference(*_fresh(args), **_fresh(kwargs))
            try:
                got = fn(*_fresh(args), **_fresh(kwargs))
            except NotImplementedError:
                raise
            except Exception as err:
                raise CheckFailed(f"case '{case}': your function raised {type(err).__name__}: {err}") from err
            if self.compare is not None:
                self.compare(got, expected, case)
            else:
                compare_values(got, expected, case, atol=self.atol, rtol=self.rtol)


EXERCISES: dict[str, Exercise] = {}


def register(exercise: Exercise) -> Exercise:
    """Add `exercise` to `EXERCISES` (its name must be new)."""
    if exercise.name in EXERCISES:
        raise ValueError(f"exercise name={exercise.name!r} is registered twice: pick another name")
    EXERCISES[exercise.name] = exercise
    return exercise


def _exercise(name: str) -> Exercise:
    if name not in EXERCISES:
        raise ValueError(f"name={name!r} is not an exercise; the exercises are {sorted(EXERCISES)}")
    return EXERCISES[name]


def check(name: str, fn: Callable[..., Any], verbose: bool = True) -> str:
    """Check the learner's `fn` for exercise `name`; print and record the verdict and return it:
    `"passed"`, `"not implemented"` (the stub still raises `NotImplementedError`) or `"failed"`."""
    exercise = _exercise(name)
    try:
        exercise.run(fn)
    except NotImplementedError:
        verdict, message = (
            NOT_IMPLEMENTED,
            "not implemented yet: fill in the function and run this cell again.",
        )
    except CheckFailed as err:
        verdict, message = FAILED, f"not yet right. {err}"
    else:
        verdict, message = PASSED, "passed: your function matches the reference on every test case."
    if verbose:
        print(f"{exercise.title} ({name}): {message}")
        if verdict != PASSED:
            print("The notebook goes on with the library's reference; come back to this one any time.")
    record(f"exercise_{name}", verdict)
    return verdict


def solution(name: str) -> Callable[..., Any]:
    """A solution of exercise `name` (what `SOLUTIONS = True` puts in place of a stub): its worked
    `solution` when it has one, else its reference."""
    exercise = _exercise(name)
    return exercise.solution or exercise.reference


def exercises_of(notebook: str) -> list[Exercise]:
    """The exercises of one notebook (its file stem, e.g. `"02_local_training"`), in registry order."""
    return [e for e in EXERCISES.values() if e.notebook == notebook]


# --------------------------------------------------------------------------- explaining a difference


def compare_values(got: Any, expected: Any, case: str, atol: float = 1e-6, rtol: float = 1e-5) -> None:
    """Raise `CheckFailed` naming `case` when `got` differs from `expected`: tensors (shape, then the
    first differing entry with both values), numbers, bools, strings, and dicts / lists / tuples of them."""
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            raise CheckFailed(
                f"case '{case}': expected a dict with keys {sorted(expected)}, got {_kind(got)}"
            )
        missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
        if missing or extra:
            raise CheckFailed(f"case '{case}': keys differ: missing {missing}, unexpected {extra}")
        for key in expected:
            compare_values(got[key], expected[key], f"{case}, {key}", atol, rtol)
        return
    if isinstance(expected, Sequence) and not isinstance(expected, str):
        if not isinstance(got, Sequence) or isinstance(got, str) or len(got) != len(expected):
            raise CheckFailed(
                f"case '{case}': expected a sequence of {len(expected)} items, got {_kind(got)}"
            )
        for index, (g, e) in enumerate(zip(got, expected, strict=True)):
            compare_values(g, e, f"{case}, item {index}", atol, rtol)
        return
    if isinstance(expected, torch.Tensor):
        _compare_tensors(got, expected, case, atol, rtol)
        return
    if isinstance(expected, bool | str) or expected is None:
        if got != expected:
            raise CheckFailed(f"case '{case}': expected {expected!r}, got {got!r}")
        return
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if not isinstance(got, int | float) or abs(got - expected) > atol + rtol * abs(expected):
        raise CheckFailed(f"case '{case}': expected {expected!r}, got {got!r}")


def _compare_tensors(got: Any, expected: torch.Tensor, case: str, atol: float, rtol: float) -> None:
    if not isinstance(got, torch.Tensor):
        raise CheckFailed(
            f"case '{case}': expected a tensor of shape {tuple(expected.shape)}, got {_kind(got)}"
        )
    if got.shape != expected.shape:
        raise CheckFailed(
            f"case '{case}': shape {tuple(got.shape)}, expected {tuple(expected.shape)}"
            + (" (transposed?)" if got.shape == expected.shape[::-1] else "")
        )
    got_f, expected_f = got.detach().double(), expected.detach().double()
    if expected.dtype == torch.bool or got.dtype == torch.bool:
        bad = got.ne(expected)
    else:
        bad = ~torch.isclose(got_f, expected_f, rtol=rtol, atol=atol, equal_nan=True)
    if bad.any():
        index = tuple(int(i) for i in bad.nonzero()[0])
        where = f" at index {index}" if index else ""
        raise CheckFailed(
            f"case '{case}': {int(bad.sum())} of {bad.numel()} values differ; first{where}: "
            f"expected {expected_f[index].item():.6g}, got {got_f[index].item():.6g}"
        )


def _kind(value: Any) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__} {value!r}"[:120]


def _fresh(value: Any) -> Any:
    """A copy of the case's arguments, so a function that changes its inputs in place cannot change
    what the reference (or the next call) sees."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, torch.nn.Module):
        return copy.deepcopy(value)
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return type(value)(_fresh(v) for v in value)
    return value
