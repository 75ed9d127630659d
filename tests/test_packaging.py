"""The environment files: Binder builds a CPU-only environment that installs modlearn."""
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_binder_installs_the_package_with_cpu_torch_and_widgets():
    req = (ROOT / "binder" / "requirements.txt").read_text()
    assert "download.pytorch.org/whl/cpu" in req and "torch" in req and "ipywidgets" in req
    post = (ROOT / "binder" / "postBuild").read_text()
    assert "set -e" in post and "pip install --no-cache-dir -e ." in post
    start = (ROOT / "binder" / "start").read_text()
    assert start.rstrip().endswith('exec "$@"')


def test_pyproject_keeps_open_ranges():
    text = (ROOT / "pyproject.toml").read_text()
    assert '"torch>=2.2"' in text and "==" not in text
