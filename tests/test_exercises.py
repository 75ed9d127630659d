"""Every exercise's checker: passes the reference and the worked solution, reports a stub as not
implemented without raising, and fails on plausible mistakes with a message naming the case.
And the registry and the notebooks agree: every exercise is in its notebook with a hint and a
solution, and every checker call in a notebook is registered."""

import importlib
import re
from pathlib import Path

import nbformat
import pytest
import torch
from support import TUTORIALS

from modlearn import checks
from modlearn.checks import EXERCISES, FAILED, NOT_IMPLEMENTED, PASSED


def _stub(*args, **kwargs):
    raise NotImplementedError


# --------------------------------------------------------------------------- plausible mistakes
# Each notebook's plausible mistakes live in tests/exercise_mistakes_<notebook number>.py as
# `MISTAKES = {exercise name: [(description, wrong function, words the message must contain), ...]}`.

MISTAKES = {
    name: mistakes
    for path in sorted(Path(__file__).parent.glob("exercise_mistakes_*.py"))
    for name, mistakes in importlib.import_module(path.stem).MISTAKES.items()
}


# --------------------------------------------------------------------------- every exercise


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_reference_and_solution_pass(name, capsys):
    assert checks.check(name, EXERCISES[name].reference) == PASSED
    assert checks.check(name, checks.solution(name)) == PASSED
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_a_stub_is_reported_not_crashed_on(name, capsys):
    assert checks.check(name, _stub) == NOT_IMPLEMENTED
    assert "not implemented yet" in capsys.readouterr().out


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_at_least_two_plausible_mistakes_fail_with_the_case_named(name, capsys):
    mistakes = MISTAKES.get(name, [])
    assert len(mistakes) >= 2, f"exercise {name!r}: write at least two plausible mistakes in MISTAKES"
    for description, wrong, expected_words in mistakes:
        assert checks.check(name, wrong) == FAILED, f"{name}: the mistake {description!r} passed the checker"
        out = capsys.readouterr().out
        assert "case '" in out and expected_words in out, f"{name}, {description}: unhelpful message {out!r}"


def test_every_exercise_states_its_cost():
    for exercise in EXERCISES.values():
        assert exercise.difficulty in (1, 2, 3) and 0 < exercise.minutes <= 60, exercise.name
        assert exercise.title and exercise.notebook in {p.stem for p in TUTORIALS.glob("*.ipynb")}


# --------------------------------------------------------------------------- registry <-> notebooks

CHECK_CALL = re.compile(r"checks\.check\(\s*[\"'](\w+)[\"']")


def _cells(stem):
    return nbformat.read(TUTORIALS / f"{stem}.ipynb", as_version=4).cells


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_every_exercise_is_in_its_notebook_with_a_stub_a_hint_and_a_solution(name):
    cells = _cells(EXERCISES[name].notebook)
    index = next(
        (i for i, c in enumerate(cells) if c.cell_type == "code" and name in CHECK_CALL.findall(c.source)),
        None,
    )
    assert index is not None, f"{EXERCISES[name].notebook} never calls checks.check({name!r}, ...)"
    stub = cells[index].source
    assert "raise NotImplementedError" in stub and "if SOLUTIONS:" in stub, (
        f"{name}: the cell needs a stub and SOLUTIONS"
    )
    after = cells[index + 1].source if index + 1 < len(cells) else ""
    assert "<summary>Hint" in after and "<summary>Solution" in after, (
        f"{name}: a hint and a solution follow the check"
    )


def test_every_checker_call_in_a_notebook_is_registered():
    for path in sorted(TUTORIALS.glob("[0-9][0-9]_*.ipynb")):
        for cell in _cells(path.stem):
            for name in CHECK_CALL.findall(cell.source) if cell.cell_type == "code" else []:
                assert name in EXERCISES, f"{path.name} checks {name!r}, which is not registered"
                assert EXERCISES[name].notebook == path.stem, f"{name} is registered for another notebook"


# --------------------------------------------------------------------------- explanations


@pytest.mark.parametrize(
    ("got", "expected", "words"),
    [
        (torch.zeros(2, 3), torch.zeros(3, 2), "(transposed?)"),
        (
            torch.tensor([1.0, 2.0, 3.0]),
            torch.tensor([1.0, 2.5, 3.0]),
            "1 of 3 values differ; first at index (1,): expected 2.5, got 2",
        ),
        ({"a": 1.0}, {"a": 1.0, "b": 2.0}, "missing ['b']"),
        (3.0, torch.tensor(1.0), "expected a tensor"),
        ([1.0], [1.0, 2.0], "sequence of 2 items"),
        (0.5, 0.25, "expected 0.25, got 0.5"),
    ],
)
def test_a_difference_is_explained(got, expected, words):
    with pytest.raises(checks.CheckFailed, match=re.escape(words)):
        checks.compare_values(got, expected, "the case")


def test_a_function_that_changes_its_inputs_cannot_fool_the_reference():
    def in_place(x, y, w1, b1, w2, b2):
        grads = checks.autograd_gradients(x, y, w1, b1, w2, b2)
        w1.zero_()
        return grads

    assert checks.check("manual_gradients", in_place) == PASSED


def test_an_unknown_exercise_is_a_value_error():
    with pytest.raises(ValueError, match="name='nope' is not an exercise"):
        checks.check("nope", _stub)
