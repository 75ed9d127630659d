"""Sphinx configuration of the course site (`make site`): the executed notebooks, the README, the API.

`docs/build_site.py` stages the sources (README, these pages, the executed notebooks, one API page per
module) into a folder of its own and runs Sphinx there with this file as its configuration. Nothing is
executed (the notebooks come executed) and nothing is fetched: MathJax is served from the site itself.
"""

import re

from sphinx.application import Sphinx

project = "modlearn"
author = "modlearn contributors"
copyright = "modlearn contributors, MIT license"

extensions = [
    "myst_nb",
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    # MathJax 3 shipped as a package and copied into _static/mathjax: math renders offline
    "sphinx-mathjax-offline",
]

# the staged README is included by index.md, never a page of its own
exclude_patterns = ["README.md", "**/.ipynb_checkpoints"]

# notebooks: rendered as executed by `make run`, never re-executed; widgets are dropped while staging
# and no widget JavaScript (require.js from a CDN) is loaded
nb_execution_mode = "off"
nb_ipywidgets_js = {}
myst_enable_extensions = ["dollarmath", "amsmath"]
# `[...](#where-to-run-it)` in the README and notebooks: anchors on headings down to level 3
myst_heading_anchors = 3

# the copy sphinx-mathjax-offline puts in _static (it sets the same path)
mathjax_path = "mathjax/tex-chtml.js"

# the library's docstrings are plain text written for `help()`, with Markdown-style `code` (no Google or
# NumPy sections): members defined in each module (re-exports are documented where they are defined),
# hints in the description, the text made valid reStructuredText by `rst_docstring` below
autodoc_default_options = {"members": True, "member-order": "bysource", "ignore-module-all": True}
autodoc_typehints = "description"
# a method without a docstring of its own stays undocumented rather than showing torch's (its own markup)
autodoc_inherit_docstrings = False

# the notebooks are in the repository; no second copy (with every figure) under _sources
html_copy_source = False
html_theme = "alabaster"
# its own icon: the browser asks no /favicon.ico (a 404, a console error, on every page)
html_favicon = "favicon.svg"
html_title = "modlearn: modular training of neural networks"
html_theme_options = {
    "description": "modular training of neural networks, taught with notebooks",
    "page_width": "1200px",  # the series table and the scoreboard are wide
}


CODE = re.compile(r"(?<![`:])`([^`]+)`(?!`)")
BULLET = re.compile(r"^\s*[-*] ")


def rst_text(text: str) -> str:
    """Plain text with `code` spans as reStructuredText: spans literal, absolute-value bars escaped."""
    pieces = CODE.split(text)
    for i in range(0, len(pieces), 2):
        pieces[i] = pieces[i].replace("\\", "\\\\").replace("|", "\\|")
    for i in range(1, len(pieces), 2):
        before = "\\ " if pieces[i - 1][-1:].isalnum() else ""
        after = "\\ " if pieces[i + 1][:1].isalnum() else ""
        pieces[i] = f"{before}``{pieces[i]}``{after}"
    return "".join(pieces)


def rst_docstring(app: Sphinx, what: str, name: str, obj: object, options: dict, lines: list[str]) -> None:
    """autodoc hook: the docstring through `rst_text` (a span may cross lines), bullet lists closed."""
    spaced: list[str] = []
    in_list = False
    for line in lines:
        starts_text = bool(line.strip()) and not line[:1].isspace() and not BULLET.match(line)
        if in_list and starts_text:
            spaced.append("")
        in_list = bool(BULLET.match(line)) or (in_list and line[:1].isspace())
        spaced.append(line)
    lines[:] = rst_text("\n".join(spaced)).split("\n")


def setup(app: Sphinx) -> None:
    """Register `rst_docstring` with autodoc."""
    app.connect("autodoc-process-docstring", rst_docstring)
