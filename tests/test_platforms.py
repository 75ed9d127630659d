"""Colab and Binder: each notebook carries its badges and an install cell that installs the package
only where `modlearn` does not import; every link points at the one repository of pyproject.toml."""

from __future__ import annotations

import shutil
import sys

import nbformat
import pytest
from support import ROOT, TUTORIALS, load_tool

from modlearn.series import notebooks

platforms = load_tool("links")  # a maintainer's tool (tools/links.py), outside the learner's import path

REPO = platforms.repository()


def run_install_cell(source: str, importable: bool) -> list[str]:
    """Run `source` in an IPython shell whose `%pip` only records its arguments; with
    `importable=False`, `import modlearn` fails as it does on a fresh Colab runtime."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    calls: list[str] = []
    shell.register_magic_function(calls.append, "line", "pip")
    saved = sys.modules.get("modlearn")
    if not importable:
        sys.modules["modlearn"] = None  # `import modlearn` now raises ImportError
    try:
        shell.run_cell(source).raise_error()
    finally:
        sys.modules["modlearn"] = saved
        InteractiveShell.clear_instance()
    return calls


def test_the_install_cell_installs_only_where_modlearn_does_not_import():
    source = platforms.install_cell(REPO)
    assert run_install_cell(source, importable=True) == []
    calls = run_install_cell(source, importable=False)
    assert calls == [f'install --quiet "modlearn @ git+https://github.com/{REPO}"'], calls


@pytest.mark.parametrize("path", notebooks(TUTORIALS), ids=lambda p: p.stem)
def test_every_notebook_opens_with_its_badges_and_the_install_cell(path):
    nb = nbformat.read(path, as_version=4)
    assert platforms.badges(REPO, path.stem) in nb.cells[0].source, f"{path.name}: no Colab/Binder badges"
    first_code = next(cell for cell in nb.cells if cell.cell_type == "code")
    assert first_code.source == platforms.install_cell(REPO), f"{path.name}: first code cell"
    assert platforms.INSTALL_TAG in first_code.metadata.get("tags", [])
    assert platforms.links_in(nbformat.writes(nb)) == {("colab", REPO), ("binder", REPO), ("install", REPO)}


def test_the_badges_images_are_in_the_repository_and_no_badge_is_fetched_from_the_network():
    for image in ("open-in-colab.svg", "launch-binder.svg"):
        assert (TUTORIALS / "images" / image).read_text().startswith("<svg")
    for path in [ROOT / "README.md", *notebooks(TUTORIALS)]:
        text = path.read_text()
        assert "badge_logo.svg" not in text and "colab-badge.svg" not in text, path.name


def test_the_readme_links_every_notebook_to_colab_and_binder_at_the_repository():
    readme = (ROOT / "README.md").read_text()
    assert {repo for _, repo in platforms.links_in(readme)} == {REPO}
    for path in notebooks(TUTORIALS):
        assert platforms.colab_url(REPO, path.stem) in readme, f"README: no Colab link for {path.name}"
    assert platforms.binder_url(REPO, "00_tour") in readme


def test_retarget_points_every_link_of_a_fork_at_it(tmp_path):
    for name in ("README.md", "pyproject.toml"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(TUTORIALS, tmp_path / "tutorials")
    changed = platforms.retarget(tmp_path, "someone/fork-of.modlearn", branch="dev")
    assert len(changed) == 2 + len(notebooks(TUTORIALS))
    assert platforms.repository(tmp_path / "pyproject.toml") == "someone/fork-of.modlearn"
    for path in [tmp_path / "README.md", *notebooks(tmp_path / "tutorials")]:
        assert {repo for _, repo in platforms.links_in(path.read_text())} == {"someone/fork-of.modlearn"}
    nb = nbformat.read(tmp_path / "tutorials" / "00_tour.ipynb", as_version=4)
    assert any(cell.source == platforms.install_cell("someone/fork-of.modlearn", "dev") for cell in nb.cells)
    assert "blob/dev/tutorials/00_tour.ipynb" in nb.cells[0].source
    assert platforms.retarget(tmp_path, "someone/fork-of.modlearn", branch="dev") == []


def test_retarget_and_repository_reject_what_is_not_a_repository(tmp_path):
    with pytest.raises(ValueError, match="owner/name"):
        platforms.retarget(tmp_path, "https://github.com/you/modlearn")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(ValueError, match="Repository"):
        platforms.repository(tmp_path / "pyproject.toml")
