"""The worked solution a notebook reveals passes its checker: the code in each exercise's
`<summary>Solution</summary>` block, run with the notebook's own imports, is checked like a learner's."""

import ast
import re

import nbformat
import pytest
from support import TUTORIALS

from modlearn import checks
from modlearn.checks import EXERCISES, PASSED

SOLUTION = re.compile(r"<summary>Solution</summary>.*?```python\n(.*?)```", re.DOTALL)


def notebook_imports(cells) -> str:
    """The import statements of a notebook's code cells, as one source."""
    from IPython.core.inputtransformer2 import TransformerManager

    found = []
    for cell in cells:
        if cell.cell_type == "code":  # IPython source (`%pip` in the install cell) made Python first
            statements = ast.parse(TransformerManager().transform_cell(cell.source)).body
            found += [ast.unparse(s) for s in statements if isinstance(s, ast.Import | ast.ImportFrom)]
    return "\n".join(found)


def revealed_solution(cells, name: str) -> str:
    """The solution code revealed after exercise `name`'s checker cell."""
    for index, cell in enumerate(cells):
        if cell.cell_type == "code" and f'checks.check("{name}"' in cell.source:
            match = SOLUTION.search(cells[index + 1].source)
            assert match, f"{name}: no ```python block in the Solution that follows the check"
            return match.group(1)
    raise AssertionError(f"{name}: no checks.check({name!r}, ...) cell")


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_the_revealed_solution_passes_its_checker(name):
    cells = nbformat.read(TUTORIALS / f"{EXERCISES[name].notebook}.ipynb", as_version=4).cells
    namespace: dict = {}
    exec(notebook_imports(cells), namespace)
    exec(revealed_solution(cells, name), namespace)
    assert checks.check(name, namespace[name], verbose=False) == PASSED, (
        f"{name}: the solution shown in {EXERCISES[name].notebook} fails its checker"
    )
