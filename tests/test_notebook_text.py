"""The text is the run: a notebook's markdown states no measured outcome by hand.

A number about an outcome is rendered from the run (`ml.report(...)` in a code cell) or sits next to
a label saying whose number it is (a paper's, a reference run's). In markdown this test therefore
accepts a decimal number or a percentage only inside a formula (`$...$`) or inline code, or in a
passage that names its source or marks it as a setting: one of `LABELS` within the same paragraph
before the number, or a share ("10 % of the data").
"""

import re

import nbformat
import pytest
from support import TUTORIALS

from modlearn.series import notebooks

NUMBER = re.compile(r"(?<![\w.])(?:\d+\.\d+|\.\d+|\d+(?:\.\d+)? ?%|\d+(?:\.\d+)? ?×(?!\s?\d))")
LABELS = re.compile(
    r"reference|paper|Table|arXiv|setting|learning rate|\blr\b|betas|annealed|towards|threshold|"
    r"\babove\b|\bbelow\b|try\b",
    re.IGNORECASE,
)
SHARE_OF = re.compile(r"\s*of (?:the|it|its|their)\b")  # "10 % of the data": a setting
# formulas, code (fenced or inline), links and exercise numbers ("Exercise 1.2") are not measured numbers
VERBATIM = re.compile(r"```.*?```|\$\$.*?\$\$|\$[^$\n]*\$|`[^`\n]*`|\]\([^)]*\)|Exercise \d+\.\d+", re.DOTALL)


def unlabelled_numbers(markdown: str) -> list[str]:
    """Each number in `markdown` outside formulas and code with no label before it in its paragraph,
    with the text leading up to it."""
    found = []
    for paragraph in re.split(r"\n\s*\n|\n(?=\s*[-*|] )|\n(?=#)", VERBATIM.sub(" ", markdown)):
        for match in NUMBER.finditer(paragraph):
            before = paragraph[: match.start()]
            if not LABELS.search(before) and not SHARE_OF.match(paragraph, match.end()):
                found.append(f"...{before[-80:]}{match.group()}")
    return found


@pytest.mark.parametrize("path", notebooks(TUTORIALS), ids=lambda p: p.stem)
def test_markdown_states_no_measured_number_by_hand(path):
    nb = nbformat.read(path, as_version=4)
    found = [
        f"cell {index}: {text!r}"
        for index, cell in enumerate(nb.cells)
        if cell.cell_type == "markdown"
        for text in unlabelled_numbers(cell.source)
    ]
    assert not found, (
        f"{path.name}: numbers in markdown that neither come from the run nor say whose they are "
        f"(render them with ml.report(...) from recorded values, or label them as a paper's / a "
        f"reference run's, next to this run's value): {found}"
    )


def test_the_check_catches_a_typed_outcome_and_accepts_labelled_numbers():
    assert unlabelled_numbers("E2E reached 0.93 and DGL 91 %.") == [
        "...E2E reached 0.93",
        "...E2E reached 0.93 and DGL 91 %",
    ]
    assert unlabelled_numbers("BIMT is 12× smaller.") == ["...BIMT is 12×"]
    assert not unlabelled_numbers("The paper's Table 2: error 7.4 % (reference, not this run).")
    settings = "Adam with lr 0.001 and $\\alpha = 0.5$, `threshold=0.9`, on 10 % of the data."
    assert not unlabelled_numbers(settings)
    assert not unlabelled_numbers("### Exercise 2.1 · DGL by hand")
    assert not unlabelled_numbers("```python\nreturn x ** 0.5\n```")
    two_paragraphs = "In the paper, E2E 81.8 %.\n\nHere E2E gives 0.93."
    assert unlabelled_numbers(two_paragraphs) == ["...Here E2E gives 0.93"]


TEACHING = notebooks(TUTORIALS)
OBJECTIVES = "By the end of this notebook you can"


def _markdown(path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]


@pytest.mark.parametrize("path", TEACHING, ids=lambda p: p.stem)
def test_objectives_open_the_notebook(path):
    opening = next((m for m in _markdown(path)[:3] if OBJECTIVES in m), None)
    assert opening, f"{path.name}: one of the first markdown cells says '{OBJECTIVES} ...' and lists skills"
    skills = re.findall(r"^\s*[-*] ", opening.split(OBJECTIVES, 1)[1], re.MULTILINE)
    assert 3 <= len(skills) <= 5, f"{path.name}: {len(skills)} learning objectives, expected 3-5 bullets"


@pytest.mark.parametrize("path", TEACHING, ids=lambda p: p.stem)
def test_questions_with_revealable_answers_close_the_notebook(path):
    closing = next((m for m in _markdown(path)[-3:] if m.lstrip().startswith("## Questions")), None)
    assert closing, f"{path.name}: one of the last markdown cells is '## Questions' with 3-5 questions"
    questions = re.findall(r"^\d+\. ", closing, re.MULTILINE)
    answers = closing.count("<summary>Answer</summary>")
    assert 3 <= len(questions) <= 5 and answers == len(questions), (
        f"{path.name}: {len(questions)} numbered questions and {answers} '<summary>Answer</summary>' blocks"
    )
