"""The Binder recipe alone (`binder/`), built here the way repo2docker builds it, then used.

repo2docker creates a fresh environment with the Python of `runtime.txt`, runs
`pip install -r binder/requirements.txt`, runs `binder/postBuild` from the repository root and wraps the
server with `binder/start`. Here: a fresh venv in a temporary folder, the requirements from this machine's
pip configuration (its local indexes), postBuild on a copy of the tracked files only, then the tour
notebook under `binder/start` with papermill.

PyTorch's CPU wheel index is out of reach here, so `TORCH_INDEX` points at a PEP 503 index this test
writes: the newest `+cpu` torch on this machine's indexes, the torchvision pip pairs with it, and their
dependencies (what the real CPU index holds). postBuild runs without this machine's pip configuration
(whose find-links and extra indexes would add torch wheels to every `pip install`, `--index-url` or not):
its only other index is the local PyPI mirror, as Binder's is PyPI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version
from support import ROOT

LOCAL_PYPI = "file:///opt/pypi/simple"  # this machine's PyPI mirror: no CPU torch on it
SIZE_LIMIT_BYTES = 2 * 10**9
STEP_TIMEOUT_S = 1200
GB = 10**9


@dataclass
class BinderEnv:
    """A built Binder environment: its venv, the repository copy it was built from, how to run in it."""

    venv: Path
    repo: Path
    work: Path
    env: dict[str, str]
    size_before_postbuild: int
    torchvision: str  # the version TORCH_INDEX offered
    postbuild: subprocess.CompletedProcess

    def python(self, code: str) -> str:
        """The stdout of `python -c code` in the venv."""
        return run([str(self.venv / "bin" / "python"), "-c", code], env=self.env).stdout.strip()


def run(command: list[str], *, env: dict[str, str], cwd: Path | None = None, check: bool = True):
    """`command` with its output captured and its time printed; a failure shows the command's output."""
    started = time.monotonic()
    done = subprocess.run(
        command, env=env, cwd=cwd, capture_output=True, text=True, timeout=STEP_TIMEOUT_S, check=False
    )
    print(f"[{time.monotonic() - started:6.1f} s] rc {done.returncode}: {' '.join(command)[:150]}")
    if check and done.returncode != 0:
        pytest.fail(f"{command} exited {done.returncode}\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return done


def installed_bytes(folder: Path) -> int:
    """Disk usage of `folder` as `du -sk` counts it, in bytes."""
    return (
        int(subprocess.run(["du", "-sk", str(folder)], capture_output=True, text=True).stdout.split()[0])
        * 1024
    )


def runtime_python() -> str:
    """The interpreter `binder/runtime.txt` names (e.g. `python3.11`), found on PATH."""
    version = (ROOT / "binder" / "runtime.txt").read_text().strip().removeprefix("python-")
    found = shutil.which(f"python{version}")
    if not found:
        pytest.fail(f"binder/runtime.txt asks for Python {version}: no python{version} on PATH")
    return found


def clean_environ() -> dict[str, str]:
    """This process's environment without what would leak into the build: another venv, the project's
    variables, Jupyter's paths; pip caches nothing."""
    leaks = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "MPLBACKEND")
    env = {
        k: v for k, v in os.environ.items() if k not in leaks and not k.startswith(("MODLEARN_", "JUPYTER"))
    }
    return {**env, "PIP_NO_CACHE_DIR": "1"}


def as_binder_user(env: dict[str, str], home: Path) -> dict[str, str]:
    """`env` as a fresh Binder user's: an empty HOME and none of this machine's pip settings (PyPI is
    the local mirror alone, as on Binder it is PyPI alone)."""
    env = {k: v for k, v in env.items() if not k.startswith("PIP_") or k == "PIP_NO_CACHE_DIR"}
    pip = {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": LOCAL_PYPI, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    return {**env, **pip, "HOME": str(home)}


def with_venv(env: dict[str, str], venv: Path) -> dict[str, str]:
    """`env` with the venv's `bin` first on PATH, as repo2docker's environment is."""
    return {**env, "PATH": f"{venv / 'bin'}{os.pathsep}{env['PATH']}"}


def copy_tracked_files(destination: Path) -> None:
    """The repository's tracked files (modes kept), so nothing untracked or built reaches the build."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in listed.decode().split("\0"):
        if name and (ROOT / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, destination / name)


def newest_cpu_torch(pip: list[str], env: dict[str, str]) -> str:
    """The newest `+cpu` torch version this machine's indexes hold; a failure says none is there."""
    listed = run([*pip, "index", "versions", "torch", "--index-url", LOCAL_PYPI], env=env).stdout
    versions = next(line for line in listed.splitlines() if line.startswith("Available versions:"))
    cpu = [Version(v.strip()) for v in versions.split(":", 1)[1].split(",") if "+cpu" in v]
    if not cpu:
        pytest.fail(f"no CPU torch on this machine's indexes ({versions}): the CPU index cannot be mirrored")
    return str(max(cpu))


def write_cpu_torch_index(folder: Path, pip: list[str], env: dict[str, str]) -> dict[str, str]:
    """A PEP 503 index in `folder` holding the CPU torch, the torchvision pip pairs with it and their
    dependencies (resolved from this machine's local indexes only); returns {name: version} of them."""
    version = newest_cpu_torch(pip, env)
    report = folder / "resolution.json"
    resolve = ["install", "--dry-run", "--ignore-installed", "--only-binary=:all:", "--report", str(report)]
    run([*pip, *resolve, "--index-url", LOCAL_PYPI, f"torch=={version}", "torchvision"], env=env)
    resolved = json.loads(report.read_text())["install"]
    for item in resolved:
        url, archive = item["download_info"]["url"], item["download_info"].get("archive_info", {})
        fragment = f"#{archive['hash']}" if "hash" in archive else ""
        page = folder / canonicalize_name(item["metadata"]["name"])
        page.mkdir()
        link = f'<a href="{url}{fragment}">{unquote(url.rsplit("/", 1)[1])}</a>'
        (page / "index.html").write_text(f"<!DOCTYPE html><html><body>{link}</body></html>\n")
    return {canonicalize_name(item["metadata"]["name"]): item["metadata"]["version"] for item in resolved}


def fresh_venv(path: Path, env: dict[str, str]) -> dict[str, str]:
    """A new venv at `path` with the runtime.txt Python; returns `env` with it first on PATH."""
    run([runtime_python(), "-m", "venv", str(path)], env=env)
    return with_venv(env, path)


@pytest.fixture(scope="module")
def binder() -> Iterator[BinderEnv]:
    """The environment built from `binder/` alone, in a temporary folder removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="modlearn-binder-") as tmp:
        work = Path(tmp)
        (work / "home").mkdir()
        (work / "repo").mkdir()
        (work / "torch-index").mkdir()
        venv = work / "venv"
        machine_env = fresh_venv(venv, clean_environ())
        copy_tracked_files(work / "repo")
        pip = [str(venv / "bin" / "python"), "-m", "pip"]
        run([*pip, "install", "-r", "binder/requirements.txt"], env=machine_env, cwd=work / "repo")
        offered = write_cpu_torch_index(work / "torch-index", pip, machine_env)
        size_before = installed_bytes(venv)
        env = {**as_binder_user(machine_env, work / "home"), "TORCH_INDEX": (work / "torch-index").as_uri()}
        print(f"TORCH_INDEX holds {offered}")
        postbuild = run(["binder/postBuild"], env=env, cwd=work / "repo", check=False)
        yield BinderEnv(venv, work / "repo", work, env, size_before, offered["torchvision"], postbuild)


def test_postbuild_installs_cpu_torch_and_modlearn_in_under_2_gb(binder):
    """Passes only with a torchvision that imports. This machine's one torchvision for its CPU torch is
    PyPI's CUDA build (there is no CPU torchvision on its disk), so here postBuild must fail at its last
    line; with PyTorch's CPU index (versions `+cpu`) it must succeed."""
    stderr = binder.postbuild.stderr
    if "+cpu" in binder.torchvision:
        assert binder.postbuild.returncode == 0, stderr[-4000:]
    else:
        print(f"torchvision {binder.torchvision} is no CPU build: postBuild must refuse it")
        assert binder.postbuild.returncode != 0 and "torchvision" in stderr.strip().splitlines()[-1], stderr
    assert binder.python("import torch; print(torch.version.cuda)") == "None"
    listed = run([str(binder.venv / "bin" / "python"), "-m", "pip", "list", "--format=json"], env=binder.env)
    names = {canonicalize_name(p["name"]) for p in json.loads(listed.stdout)}
    assert {"torch", "torchvision", "modlearn", "ipykernel", "papermill"} <= names
    cuda = sorted(n for n in names if n.startswith(("nvidia-", "triton")))
    assert not cuda, f"CUDA packages installed: {cuda}"
    size = installed_bytes(binder.venv)
    torch_size = installed_bytes(
        Path(binder.python("import torch, os; print(os.path.dirname(torch.__file__))"))
    )
    versions = binder.python(
        "from importlib.metadata import version as v; print(v('torch'), v('torchvision'))"
    )
    print(
        f"Binder venv: {size / GB:.2f} GB installed (du -sk), {binder.size_before_postbuild / GB:.2f} GB "
        f"from requirements.txt, torch package {torch_size / GB:.2f} GB; torch, torchvision = {versions}"
    )
    assert size < SIZE_LIMIT_BYTES, f"the Binder environment takes {size / GB:.2f} GB (limit 2 GB)"
    settings = binder.venv / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    assert settings.read_text() == (binder.repo / "jupyter" / "overrides.json").read_text(), "widget state"


def test_the_tour_runs_under_binder_start_in_the_binder_kernel(binder):
    out = binder.work / "00_tour.out.ipynb"
    papermill = ["python", "-m", "papermill", "-k", "python3", "tutorials/00_tour.ipynb", str(out)]
    run(["binder/start", *papermill, "-p", "BUDGET", "smoke"], env=binder.env, cwd=binder.repo)
    cells = json.loads(out.read_text())["cells"]
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    printed = "".join("".join(o.get("text", "")) for o in outputs if o["output_type"] == "stream")
    torch_version = binder.python("import torch; print(torch.__version__)")
    assert f"torch: {torch_version}" in printed, "the kernel was not the Binder venv's Python"
    assert "device: cpu" in printed


def test_make_run_under_binder_start_uses_the_binder_environment(binder):
    """A learner's `make run` in a Binder terminal must not build a second env (with PyPI's CUDA torch)."""
    planned = run(["binder/start", "make", "-n", "run"], env=binder.env, cwd=binder.repo).stdout
    assert "pip install" not in planned and "-m venv" not in planned, planned
    assert f"{binder.venv}/bin/python -m modlearn.series" in planned, planned


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A temporary folder with an empty `home`, removed afterwards (it may hold a venv)."""
    with tempfile.TemporaryDirectory(prefix="modlearn-binder-") as tmp:
        (Path(tmp) / "home").mkdir()
        yield Path(tmp)


@pytest.mark.parametrize("index", ["empty", "unreachable"])
def test_postbuild_fails_and_installs_no_torch_when_the_torch_index_fails(index, scratch):
    (scratch / "empty-index").mkdir()
    env = fresh_venv(scratch / "venv", as_binder_user(clean_environ(), scratch / "home"))
    urls = {"empty": (scratch / "empty-index").as_uri(), "unreachable": "http://127.0.0.1:9/simple"}
    env = {**env, "TORCH_INDEX": urls[index], "PIP_RETRIES": "0", "PIP_TIMEOUT": "5"}
    shutil.copytree(ROOT / "binder", scratch / "repo" / "binder")
    failed = run(["binder/postBuild"], env=env, cwd=scratch / "repo", check=False)
    assert failed.returncode != 0
    assert "No matching distribution found for torch" in failed.stderr
    listed = run([str(scratch / "venv" / "bin" / "python"), "-m", "pip", "list"], env=env).stdout.lower()
    assert not [word for word in ("torch", "nvidia", "triton") if word in listed], listed
