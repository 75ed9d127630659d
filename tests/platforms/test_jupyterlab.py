"""Every notebook in a real JupyterLab, driven in Chromium: Run All at smoke, no error output, each
explorer operated once (its picture must change), saved, the kernel shut down, reopened: the explorers
must show their last picture (saved widget state, `jupyter/overrides.json`), never "Error displaying
widget", and no page may fetch anything from outside localhost.

`make test-browser` runs it. Screenshots land in `build/browser/<stem>.png` (after the run) and
`build/browser/<stem>-reopened.png`; Run All seconds per notebook in `build/browser/timings.json`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import psutil
import pytest
from support import BUILD, ROOT

from modlearn.series import notebooks

NOTEBOOKS = [path.name for path in notebooks(ROOT / "tutorials")]
SHOTS = BUILD / "browser"
OVERRIDES = ROOT / "jupyter" / "overrides.json"
RUN_ALL_TIMEOUT_S = 300
ERROR_TEXTS = ("Error displaying widget", "model not found")
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
STDERR = "application/vnd.jupyter.stderr"
NOTEBOOK = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook"  # the open notebook, not a hidden tab


@dataclass
class Lab:
    """A running JupyterLab: its base URL, token and notebook folder."""

    url: str
    token: str
    root: Path

    def api(self, path: str, method: str = "GET") -> object:
        """Call the server's REST API; the decoded JSON reply (None when empty)."""
        request = urllib.request.Request(f"{self.url}{path}", method=method)
        request.add_header("Authorization", f"token {self.token}")
        with urllib.request.urlopen(request, timeout=10) as reply:
            body = reply.read()
        return json.loads(body) if body else None


def smoke_copy(folder: Path) -> Path:
    """`tutorials/` copied into `folder`, each notebook's `parameters` cell set to `BUDGET = "smoke"`."""
    target = folder / "tutorials"
    shutil.copytree(ROOT / "tutorials", target)
    for name in NOTEBOOKS:
        notebook = nbformat.read(target / name, as_version=4)
        cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
        cell.source, count = re.subn(r'^BUDGET = "\w+"', 'BUDGET = "smoke"', cell.source, flags=re.M)
        assert count == 1, f"{name}: no BUDGET line in the parameters cell"
        nbformat.write(notebook, target / name)
    return target


def free_port() -> int:
    """A TCP port free on localhost now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env() -> dict[str, str]:
    """The server's (and its kernels') environment: smoke budget, embedded digits, inline figures."""
    env = {k: v for k, v in os.environ.items() if k not in ("MODLEARN_DATA", "MPLBACKEND")}
    env["MODLEARN_BUDGET"] = "smoke"
    return env


def wait_for_server(lab: Lab, process: subprocess.Popen, timeout_s: float = 90) -> None:
    """Return once the server answers; fail with its exit code if it died first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"jupyter lab exited with {process.returncode} before answering")
        try:
            lab.api("/api/status")
            return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer within {timeout_s} s")


def shutdown_kernels(lab: Lab) -> None:
    """Shut down every kernel the server runs (a server that no longer answers has none)."""
    try:
        for kernel in lab.api("/api/kernels") or []:
            lab.api(f"/api/kernels/{kernel['id']}", method="DELETE")
    except OSError:
        pass


def stop_server(lab: Lab, process: subprocess.Popen) -> None:
    """Shut down every kernel, then the server's process group; kill whatever outlives it."""
    shutdown_kernels(lab)
    try:
        children = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        children = []
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    for child in children:
        if child.is_running():
            child.kill()


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Iterator[Lab]:
    """JupyterLab on a smoke copy of the tutorials, with the shipped widget-state override installed."""
    installed = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    if not installed.exists() or json.loads(installed.read_text()) != json.loads(OVERRIDES.read_text()):
        pytest.fail(f"{installed} is not {OVERRIDES}: `make venv` installs it (or copy it there)")
    root = smoke_copy(tmp_path_factory.mktemp("lab"))
    port, token = free_port(), secrets.token_hex(16)
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1"]
    command += [f"--ServerApp.token={token}", "--ServerApp.open_browser=False", f"--notebook-dir={root}"]
    # fresh user settings and workspace: no tab or setting left by an earlier session
    command += [
        f"--LabApp.{kind}_dir={tmp_path_factory.mktemp(kind)}" for kind in ("user_settings", "workspaces")
    ]
    command += ["--allow-root"] if os.geteuid() == 0 else []
    log = (tmp_path_factory.getbasetemp() / "jupyter-lab.log").open("w")
    process = subprocess.Popen(
        command, env=server_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = Lab(f"http://127.0.0.1:{port}", token, root)
    try:
        wait_for_server(server, process)
        yield server
    finally:
        stop_server(server, process)
        log.close()


@pytest.fixture
def lab_for_one(lab: Lab) -> Iterator[Lab]:
    """The server, for one notebook's test: its kernels are shut down afterwards, passed or failed."""
    try:
        yield lab
    finally:
        shutdown_kernels(lab)


# ----------------------------------------------------------------------------- the page, as a user sees it


def open_notebook(page, lab: Lab, name: str) -> None:
    """Open `name` in JupyterLab and wait until its cells are drawn and its kernel is idle."""
    page.goto(f"{lab.url}/lab/tree/{name}?reset&token={lab.token}")
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell", timeout=60_000)
    wait_idle(page)


def wait_idle(page, timeout_s: float = 60) -> None:
    """Wait until the status bar reports a connected, idle kernel (`Python 3 (modlearn) | Idle`)."""
    status = "[...document.querySelectorAll('.jp-StatusBar-TextItem')]"
    page.wait_for_function(f"{status}.some(e => e.textContent.endsWith('| Idle'))", timeout=timeout_s * 1000)


def menu(page, title: str, command: str) -> None:
    """Click the menu bar's `title`, then its item bound to the JupyterLab `command`."""
    page.click(f'.lm-MenuBar-item:has-text("{title}")')
    page.click(f'.lm-Menu-item[data-command="{command}"]')


def accept_dialog(page) -> None:
    """Accept a confirmation dialog if one opens."""
    button = page.locator(".jp-Dialog .jp-mod-accept")
    try:
        button.wait_for(timeout=2000)
    except Exception:  # noqa: BLE001 - playwright's TimeoutError: no dialog this time
        return
    button.click()


def prompts(page) -> list[str]:
    """The execution prompts (`[3]:`, `[*]:`, `[ ]:`) of the open notebook's code cells."""
    return page.locator(f"{NOTEBOOK} .jp-CodeCell .jp-InputArea-prompt").all_text_contents()


def run_all(page, code_cells: int) -> float:
    """Run All Cells from the Run menu; the seconds until every code cell has an execution count."""
    start = time.monotonic()
    menu(page, "Run", "runmenu:run-all")
    deadline = start + RUN_ALL_TIMEOUT_S
    while time.monotonic() < deadline:
        shown = prompts(page)
        if len(shown) == code_cells and all(re.fullmatch(r"\[\d+\]:", p.strip()) for p in shown):
            wait_idle(page)
            return time.monotonic() - start
        if error_outputs(page):  # Run All stops at an error: fail now, not at the timeout
            pytest.fail(f"error output during Run All: {error_outputs(page)}")
        page.wait_for_timeout(500)
    pytest.fail(f"Run All not done after {RUN_ALL_TIMEOUT_S} s; prompts {prompts(page)}")


def error_outputs(page) -> list[str]:
    """Texts of outputs that show an error: tracebacks, stderr errors, widgets that failed to display."""
    stderr = page.locator(f"{NOTEBOOK} .jp-OutputArea-output[data-mime-type='{STDERR}']")
    found = [t for t in stderr.all_text_contents() if "Error" in t or "Traceback" in t]
    found += [t for t in page.locator(f"{NOTEBOOK} .jp-RenderedText").all_text_contents() if "Traceback" in t]
    outputs = "\n".join(page.locator(f"{NOTEBOOK} .jp-OutputArea").all_text_contents())
    found += [text for text in ERROR_TEXTS if text in outputs]
    return found


def full_screenshot(page, path: Path) -> None:
    """A screenshot of the whole notebook: the viewport stretched to the notebook's height, then restored."""
    height = page.locator(NOTEBOOK).first.evaluate(
        "n => Math.max(n.scrollHeight, ...[...n.querySelectorAll('.jp-WindowedPanel-outer')]"
        ".map(e => e.scrollHeight))"
    )
    viewport = page.viewport_size
    page.set_viewport_size({"width": viewport["width"], "height": min(int(height) + 200, 30_000)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(viewport)


def save(page, path: Path) -> dict:
    """Ctrl+S; once the tab is no longer marked dirty, the saved notebook's widget state (may be empty)."""
    page.locator(NOTEBOOK).first.click(position={"x": 5, "y": 5})
    page.keyboard.press("Control+s")
    page.wait_for_selector(".lm-TabBar-tab.jp-mod-current.jp-mod-dirty", state="detached", timeout=30_000)
    widgets = nbformat.read(path, as_version=4).metadata.get("widgets", {})
    return widgets.get("application/vnd.jupyter.widget-state+json", {}).get("state", {})


# ----------------------------------------------------------------------------- the explorers and their moves


def move_slider(widget) -> None:
    """Move the (first) slider one step left with the keyboard."""
    handle = widget.locator(".noUi-handle").first
    handle.focus()
    handle.press("ArrowLeft")


def toggle_checkbox(widget) -> None:
    """Tick the (first) checkbox."""
    widget.locator(".widget-checkbox input").first.click()


def next_dropdown_option(widget) -> None:
    """Choose the next option of the (first) dropdown."""
    select = widget.locator(".widget-dropdown select").first
    index = select.evaluate("s => s.selectedIndex")
    count = select.evaluate("s => s.options.length")
    select.select_option(index=(index + 1) % count)


def select_other_classes(widget) -> None:
    """Select two classes other than the current selection in the multiple-choice list."""
    select = widget.locator(".widget-select-multiple select").first
    select.select_option(index=[0, 1])


# explorer function name in the notebooks -> (the move, what it does, for the report)
MOVES: dict[str, tuple[Callable, str]] = {
    "prediction_browser": (toggle_checkbox, "tick 'only the mistakes'"),
    "modules_explorer": (move_slider, "modules K slider one step left"),
    "cluster_explorer": (next_dropdown_option, "model dropdown to the next model"),
    "module_picker": (select_other_classes, "classes (3, 5, 8) -> (0, 1)"),
    "network_movie": (move_slider, "snapshot slider one step left"),
    "circuit_explorer": (next_dropdown_option, "network dropdown to the next network"),
    "intervention_explorer": (next_dropdown_option, "intervene dropdown to the next option"),
}


def explorer_cells(path: Path) -> list[tuple[int, str]]:
    """(cell index, explorer name) for each cell that calls one of the explorers."""
    notebook = nbformat.read(path, as_version=4)
    found = []
    for index, cell in enumerate(notebook.cells):
        names = re.findall(r"widgets\.(\w+)\(", cell.source) if cell.cell_type == "code" else []
        found += [(index, name) for name in names if name in MOVES]
    return found


def picture(widget) -> str:
    """What an explorer's output shows: its images' sources and its text."""
    output = widget.locator(".jupyter-widgets-output-area, .widget-output").first
    images = output.locator("img").evaluate_all("imgs => imgs.map(i => i.src).join('|')")
    return images + "\n" + (output.text_content() or "")


def operate(page, cell_index: int, name: str) -> tuple[str, str]:
    """Perform the explorer's move; the picture before and after (fails if it did not change)."""
    widget = page.locator(f"{NOTEBOOK} .jp-Cell").nth(cell_index).locator(".widget-interact").first
    widget.scroll_into_view_if_needed()
    before = picture(widget)
    assert before.strip(), f"{name}: the explorer shows nothing before the move"
    MOVES[name][0](widget)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and picture(widget) in (before, ""):
        page.wait_for_timeout(500)
    wait_idle(page)
    after = picture(widget)
    assert after != before, f"{name}: {MOVES[name][1]} did not change the picture"
    return before, after


def summary(text: str) -> str:
    """A short description of a picture: how many images, their sizes and the text."""
    images, _, body = text.partition("\n")
    sources = [s for s in images.split("|") if s]
    return f"{len(sources)} img ({[len(s) for s in sources]} chars), text {body.strip()[:120]!r}"


# ----------------------------------------------------------------------------- the test


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_in_jupyterlab(page, lab_for_one: Lab, name: str) -> None:
    """Run All, operate each explorer, save, shut down, reopen: no error, pictures kept, nothing remote."""
    lab = lab_for_one
    SHOTS.mkdir(parents=True, exist_ok=True)
    stem = Path(name).stem
    remote: list[str] = []
    superseded: set[str] = set()
    page.on("request", lambda r: None if urlparse(r.url).hostname in LOCAL_HOSTS else remote.append(r.url))
    page.on("requestfailed", lambda r: superseded.add(r.url) if is_superseded(r) else None)

    report, last = run_and_operate(page, lab, name)
    saved = save(page, lab.root / name)
    assert saved or not last, f"{name}: saved without the widget state (is jupyter/overrides.json installed?)"
    full_screenshot(page, SHOTS / f"{stem}.png")
    menu(page, "Kernel", "kernelmenu:shutdown")
    accept_dialog(page)
    reopen_and_check(page, name, last)
    full_screenshot(page, SHOTS / f"{stem}-reopened.png")
    record(stem, report)

    assert not remote, f"{name}: requests beyond localhost {remote}"
    failed = [url for url in page.log.failed_requests if url not in superseded]
    assert not failed, f"{name}: failed requests {failed}"
    assert not broken_images(page), f"{name}: images that did not load {broken_images(page)}"


def run_and_operate(page, lab: Lab, name: str) -> tuple[dict, dict[int, str]]:
    """Open, Run All, check the outputs, operate each explorer: the report, each explorer's last picture."""
    code_cells = sum(cell.cell_type == "code" for cell in nbformat.read(lab.root / name, as_version=4).cells)
    open_notebook(page, lab, name)
    report: dict = {"run_all_s": round(run_all(page, code_cells), 1), "explorers": {}}
    assert not error_outputs(page), f"{name}: error output after Run All: {error_outputs(page)}"
    last = {}
    for cell_index, explorer in explorer_cells(lab.root / name):
        before, last[cell_index] = operate(page, cell_index, explorer)
        report["explorers"][explorer] = {
            "move": MOVES[explorer][1],
            "before": summary(before),
            "after": summary(last[cell_index]),
        }
    return report, last


def reopen_and_check(page, name: str, last: dict[int, str]) -> None:
    """Reload the page (a fresh kernel holds none of the old widgets): every explorer shows its last picture
    from the saved widget state, and no output says a widget failed to display."""
    page.reload()
    page.wait_for_selector(f"{NOTEBOOK} .jp-Cell", timeout=60_000)
    wait_idle(page)
    page.wait_for_timeout(1000)
    for cell_index, after in last.items():
        widget = page.locator(f"{NOTEBOOK} .jp-Cell").nth(cell_index).locator(".widget-interact").first
        try:
            widget.wait_for(state="attached", timeout=30_000)
        except Exception:  # noqa: BLE001 - playwright's TimeoutError, reported with the outputs below
            pytest.fail(f"{name}: cell {cell_index} shows no explorer on reopening: {error_outputs(page)}")
        assert picture(widget) == after, f"{name}: cell {cell_index} lost its last picture on reopening"
    assert not error_outputs(page), f"{name}: after reopening: {error_outputs(page)}"


def broken_images(page) -> list[str]:
    """The sources of the notebook's images that did not load."""
    return page.locator(f"{NOTEBOOK} img").evaluate_all(
        "imgs => imgs.filter(i => i.complete && i.naturalWidth === 0).map(i => i.src)"
    )


def is_superseded(request) -> bool:
    """A localhost request the page itself aborted: JupyterLab's markdown renderer sets a relative
    `<img src>` (fetched relative to /lab/tree/) and then rewrites it to the file's /files/ URL."""
    return urlparse(request.url).hostname in LOCAL_HOSTS and request.failure == "net::ERR_ABORTED"


def record(stem: str, report: dict) -> None:
    """Add one notebook's Run All seconds and explorer moves to `build/browser/timings.json`."""
    path = SHOTS / "timings.json"
    timings = json.loads(path.read_text()) if path.exists() else {}
    timings[stem] = report
    path.write_text(json.dumps(timings, indent=1, ensure_ascii=False))
