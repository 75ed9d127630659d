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


def test_binder_installs_cpu_torch_from_the_cpu_wheels_alone_or_fails_loudly():
    requirements = [Requirement(" ".join(line)) for line in commands(ROOT / "binder" / "requirements.txt")]
    assert not {"torch", "torchvision"} & {r.name for r in requirements}, (
        "torch in requirements.txt would come from PyPI (the CUDA build) if the CPU index is unreachable"
    )
    assert {"ipywidgets", "papermill", "ipykernel", "nbformat"} <= {r.name for r in requirements}
    lines = commands(ROOT / "binder" / "postBuild")
    assert lines[0][0] == "set" and "e" in lines[0][1].lstrip("-"), "postBuild must start with set -e"
    torch_install = next(line for line in lines if line[:2] == ["pip", "install"] and "torch>=2.2" in line)
    index = torch_install[torch_install.index("--index-url") + 1]
    assert index == "${TORCH_INDEX:-" + CPU_WHEELS + "}" and "--extra-index-url" not in torch_install
    package_torch = next(
        Requirement(d) for d in pyproject()["project"]["dependencies"] if d.startswith("torch")
    )
    assert Requirement("torch>=2.2").specifier == package_torch.specifier
    check = next(line for line in lines if line[:2] == ["python", "-c"])
    assert "torch.version.cuda" in check[2] and "sys.exit" in check[2], "a CUDA build must fail the build"
    installs = [line for line in lines if line[:2] == ["pip", "install"]]
    assert installs.index(torch_install) < len(installs) - 1, "torch first, then the package"
    assert any(line[i : i + 2] == ["-e", "."] for line in installs for i in range(len(line)))


def test_a_built_wheel_holds_every_subpackage(tmp_path):
    import shutil
    import subprocess
    import sys
    import zipfile

    source = tmp_path / "source"  # a clean copy: an in-tree build/ folder would carry earlier builds' files
    shutil.copytree(ROOT / "modlearn", source / "modlearn", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    wheel = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    subprocess.run([*wheel, "-w", str(tmp_path), str(source)], check=True)
    names = zipfile.ZipFile(next(tmp_path.glob("modlearn-*.whl"))).namelist()
    packages = {p.parent.relative_to(ROOT).as_posix() for p in (ROOT / "modlearn").rglob("__init__.py")}
    assert {"modlearn", "modlearn/train", "modlearn/local", "modlearn/nemo", "modlearn/checks"} <= packages
    for package in packages:
        assert f"{package}/__init__.py" in names, (
            f"{package} is missing from the wheel: a plain install lacks it"
        )


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
