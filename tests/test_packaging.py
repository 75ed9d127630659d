"""The environment files, parsed: Binder builds a CPU-only environment that installs modlearn;
pyproject keeps open version ranges and matches the LICENSE file."""

import shlex
from pathlib import Path

import tomllib
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[1]
CPU_WHEELS = "https://download.pytorch.org/whl/cpu"


def commands(path: Path) -> list[list[str]]:
    """The non-comment, non-empty lines of a shell script (or requirements file), split like a shell."""
    lines = path.read_text().splitlines()
    return [shlex.split(line) for line in lines if line.strip() and not line.lstrip().startswith("#")]


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_binder_requirements_take_torch_from_the_cpu_wheels_with_the_package_range():
    lines = commands(ROOT / "binder" / "requirements.txt")
    options = {line[0]: line[1] for line in lines if line[0].startswith("--")}
    assert options.get("--extra-index-url") == CPU_WHEELS or options.get("--index-url") == CPU_WHEELS
    requirements = {
        r.name: r for r in (Requirement(" ".join(line)) for line in lines if not line[0].startswith("-"))
    }
    assert {"torch", "ipywidgets"} <= set(requirements)
    package_torch = next(
        Requirement(d) for d in pyproject()["project"]["dependencies"] if d.startswith("torch")
    )
    assert requirements["torch"].specifier == package_torch.specifier


def test_binder_post_build_fails_on_errors_and_installs_the_package_editable():
    lines = commands(ROOT / "binder" / "postBuild")
    assert lines[0][0] == "set" and "e" in lines[0][1].lstrip("-"), "postBuild must start with set -e"
    installs = [line for line in lines if line[:2] == ["pip", "install"]]
    assert installs and any(line[i : i + 2] == ["-e", "."] for line in installs for i in range(len(line)))


def test_binder_start_hands_over_to_the_server():
    assert commands(ROOT / "binder" / "start")[-1] == ["exec", "$@"]


def test_pyproject_keeps_open_ranges():
    dependencies = [Requirement(d) for d in pyproject()["project"]["dependencies"]]
    for extra in pyproject()["project"]["optional-dependencies"].values():
        dependencies += [Requirement(d) for d in extra]
    pinned = [str(r) for r in dependencies if any(s.operator in ("==", "===") for s in r.specifier)]
    assert not pinned, f"pinned dependencies {pinned}: use ranges (>=) so the notebooks install anywhere"
    torch = next(r for r in dependencies if r.name == "torch")
    assert "2.2" in torch.specifier and "2.1" not in torch.specifier


def test_license_file_matches_pyproject():
    assert pyproject()["project"]["license"] == {"text": "MIT"}
    text = (ROOT / "LICENSE").read_text()
    assert text.splitlines()[0] == "MIT License"
    assert "Copyright (c) 2026 the modlearn authors" in text
    assert 'THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND' in text
