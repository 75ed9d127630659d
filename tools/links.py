"""Where a learner opens the series besides a local JupyterLab: Colab and Binder links, and the
install cell that makes a notebook work on its own in Colab.

One repository is the source of every link: `[project.urls] Repository` in `pyproject.toml`. A fork
points all of them at itself with one command (README and every notebook rewritten):

    python tools/links.py --repository you/modlearn [--branch main]

The badges are small SVG files in `tutorials/images/`, so neither a notebook nor the site loads
anything from the network to show them.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BRANCH = "main"
# the links, with the repository ("owner/name") and the branch or ref as groups
COLAB_LINK = re.compile(
    r"https://colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/([\w./-]+?)/tutorials/"
)
BINDER_LINK = re.compile(r"https://mybinder\.org/v2/gh/([\w.-]+/[\w.-]+)/([\w.-]+)\?")
# (in a notebook file the quotes around it are escaped, so the pattern stops before them)
INSTALL_LINE = re.compile(r"modlearn @ git\+https://github\.com/([\w.-]+/[\w.-]+?)(?:@([\w./-]+))?(?=\\?\")")
INSTALL_TAG = "install-if-missing"
REPOSITORY_LINE = re.compile(r'(?m)^Repository = "(.*)"$')


def repository(pyproject: str | Path = ROOT / "pyproject.toml") -> str:
    """`owner/name` of the series' GitHub repository, from `[project.urls] Repository`."""
    line = REPOSITORY_LINE.search(Path(pyproject).read_text())
    found = line and re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)/?", line.group(1))
    if not found:
        raise ValueError(
            f"{pyproject}: [project.urls] Repository is {line and line.group(1)!r}; set it to the "
            "series' repository, e.g. 'https://github.com/owner/modlearn'"
        )
    return found.group(1)


def colab_url(repo: str, notebook: str, branch: str = DEFAULT_BRANCH) -> str:
    """Colab's URL that opens `tutorials/<notebook>.ipynb` of `repo` (`owner/name`) at `branch`."""
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/tutorials/{notebook}.ipynb"


def binder_url(repo: str, notebook: str, ref: str = "HEAD") -> str:
    """Binder's URL that builds `binder/` of `repo` and opens `tutorials/<notebook>.ipynb` in JupyterLab."""
    return f"https://mybinder.org/v2/gh/{repo}/{ref}?urlpath=lab/tree/tutorials/{notebook}.ipynb"


def badges(repo: str, notebook: str, images: str = "images", branch: str = DEFAULT_BRANCH) -> str:
    """The markdown of the Colab and Binder badges of `notebook`, with the SVGs under `images`
    (relative to the page that shows them)."""
    colab = f"[![Open in Colab]({images}/open-in-colab.svg)]({colab_url(repo, notebook, branch)})"
    binder = f"[![Launch Binder]({images}/launch-binder.svg)]({binder_url(repo, notebook)})"
    return f"{colab} {binder}"


def install_cell(repo: str, branch: str = DEFAULT_BRANCH) -> str:
    """The source of every notebook's first code cell: install the package from `repo` only where
    `modlearn` does not import (Colab, a bare Python), and do nothing where it does (here, Binder, CI)."""
    ref = "" if branch == DEFAULT_BRANCH else f"@{branch}"
    return (
        "# Colab, or any Python without the series' package: install it from the repository.\n"
        "# Where `modlearn` already imports (make lab, Binder, CI) this cell does nothing.\n"
        "try:\n"
        "    import modlearn  # noqa: F401\n"
        "except ImportError:\n"
        f'    %pip install --quiet "modlearn @ git+https://github.com/{repo}{ref}"'
    )


def point_links_at(text: str, repo: str, branch: str = DEFAULT_BRANCH) -> str:
    """`text` with every Colab, Binder and install link of the series pointing at `repo` and `branch`."""
    ref = "" if branch == DEFAULT_BRANCH else f"@{branch}"
    text = COLAB_LINK.sub(f"https://colab.research.google.com/github/{repo}/blob/{branch}/tutorials/", text)
    text = BINDER_LINK.sub(f"https://mybinder.org/v2/gh/{repo}/HEAD?", text)
    return INSTALL_LINE.sub(f"modlearn @ git+https://github.com/{repo}{ref}", text)


def links_in(text: str) -> set[tuple[str, str]]:
    """`(kind, repo)` of every Colab, Binder and install link in `text`."""
    return (
        {("colab", m.group(1)) for m in COLAB_LINK.finditer(text)}
        | {("binder", m.group(1)) for m in BINDER_LINK.finditer(text)}
        | {("install", m.group(1)) for m in INSTALL_LINE.finditer(text)}
    )


def retarget(root: str | Path, repo: str, branch: str = DEFAULT_BRANCH) -> list[Path]:
    """Point README.md, every notebook of `tutorials/` and `[project.urls]` at `repo`; return the
    files changed."""
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", repo):
        raise ValueError(f"repository {repo!r} is not 'owner/name' (e.g. 'you/modlearn')")
    root = Path(root)
    changed = []
    for path in [root / "README.md", *sorted((root / "tutorials").glob("*.ipynb"))]:
        text = path.read_text()
        new = point_links_at(text, repo, branch)
        if new != text:
            path.write_text(new)
            changed.append(path)
    pyproject = root / "pyproject.toml"
    text = pyproject.read_text()
    new = REPOSITORY_LINE.sub(f'Repository = "https://github.com/{repo}"', text)
    if new != text:
        pyproject.write_text(new)
        changed.append(pyproject)
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Point the Colab, Binder and install links at a repository.")
    parser.add_argument("--repository", required=True, help="owner/name on GitHub, e.g. you/modlearn")
    parser.add_argument("--branch", default=DEFAULT_BRANCH, help="the branch Colab opens and installs from")
    parser.add_argument("--root", default=str(ROOT), help="the checkout to rewrite")
    args = parser.parse_args(argv)
    changed = retarget(args.root, args.repository, args.branch)
    print("\n".join(f"updated {path}" for path in changed) or "already pointing there")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
