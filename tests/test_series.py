"""The headless runner (modlearn/series/): cell timeouts, the idle-kernel watchdog, process-tree memory."""

import json
import time

import nbformat
import pytest
from support import TUTORIALS

from modlearn.claims import CLAIMS, KEY_RESULTS, Claim
from modlearn.series import (
    README_BEGIN,
    README_END,
    KernelIdleError,
    execute_notebook,
    main,
    notebooks,
    runs_alone,
    update_readme,
    write_results,
)


def _notebook(folder, name, *sources):
    """A notebook with a `parameters` cell, then one code cell per source."""
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('BUDGET = "cpu"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, *(nbformat.v4.new_code_cell(s) for s in sources)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = folder / name
    nbformat.write(nb, path)
    return path


def test_idle_kernel_fails_the_notebook_naming_the_cell(tmp_path):
    path = _notebook(tmp_path, "stuck.ipynb", "x = 1", "import time\ntime.sleep(120)  # waits on nothing")
    start = time.perf_counter()
    with pytest.raises(KernelIdleError, match=r"stuck\.ipynb: cell \d+ \('import time'\).*no CPU for 3 s"):
        execute_notebook(path, tmp_path / "out", idle_timeout=3)
    assert time.perf_counter() - start < 60


def test_busy_cell_past_the_timeout_fails_naming_the_cell(tmp_path):
    path = _notebook(tmp_path, "busy.ipynb", "while True:\n    pass")
    with pytest.raises(TimeoutError, match=r"busy\.ipynb: cell \d+ \('while True:'\) ran past the 3 s"):
        execute_notebook(path, tmp_path / "out", timeout=3, idle_timeout=2)


def test_peak_memory_counts_the_kernels_child_processes(tmp_path):
    child = "import time; block = b'x' * (300 * 2**20); time.sleep(1)"
    path = _notebook(
        tmp_path,
        "child.ipynb",
        f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {child!r}], check=True)",
    )
    results = execute_notebook(path, tmp_path / "out")
    assert results == {}
    assert results.peak_tree_mb > 300, f"peak {results.peak_tree_mb:.0f} MB misses the child's 300 MB"


@pytest.mark.notebook
def test_notebook_03_never_hangs_and_stays_under_2_gb(tmp_path):
    peaks = []
    for run in range(5):
        results = execute_notebook(
            TUTORIALS / "03_deep_incubation.ipynb", tmp_path / f"run{run}", "smoke", idle_timeout=60
        )
        assert results["parallel_equals_sequential"] is True
        peaks.append(results.peak_tree_mb)
    assert max(peaks) < 2000, f"peak memory of the kernel and its workers per run (MB): {peaks}"


def test_results_json_and_markdown_hold_every_value_and_verdict(tmp_path, monkeypatch):
    claims = [
        Claim("x is small", lambda r: r["x"] < 1),
        Claim("y is large", lambda r: r["y"] > 1),
        Claim("z is recorded", lambda r: r["z"] > 0),
    ]
    monkeypatch.setitem(CLAIMS, "99_fake", claims)
    recorded = {"99_fake": {"x": 0.5, "y": 0.5}}
    json_path, md_path = write_results(recorded, ["98_other.ipynb"], "cpu", tmp_path)
    saved = json.loads(json_path.read_text())
    assert saved["run"]["budget"] == "cpu" and saved["run"]["failed"] == ["98_other.ipynb"]
    entry = saved["notebooks"]["99_fake"]
    assert entry["results"] == recorded["99_fake"]
    held = {c["claim"]: c["held"] for c in entry["claims"]}
    assert held == {"x is small": True, "y is large": False, "z is recorded": None}
    text = md_path.read_text()
    assert "| y is large | **did not hold** | y 0.5 |" in text and "| `x` | 0.5 |" in text
    assert {c["claim"]: c["values"] for c in entry["claims"]}["x is small"] == {"x": 0.5}


def _fake_run(monkeypatch, tmp_path, name, x):
    monkeypatch.setitem(CLAIMS, "99_fake", [Claim("x is small", lambda r: r["x"] < 1)])
    monkeypatch.setitem(KEY_RESULTS, "99_fake", "x = {x:.2f}")
    recorded = {"99_fake": {"budget": "cpu", "dataset": name, "x": x}}
    return write_results(recorded, [], "cpu", tmp_path / name)[0]


def test_readme_block_is_rewritten_from_the_results_files(tmp_path, monkeypatch):
    runs = [_fake_run(monkeypatch, tmp_path, "digits", 0.25), _fake_run(monkeypatch, tmp_path, "mnist", 2.0)]
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{README_BEGIN}\nstale typed table\n{README_END}\noutro\n")
    assert update_readme(readme, runs)
    text = readme.read_text()
    assert "stale" not in text and text.startswith("intro\n") and text.endswith("outro\n")
    assert "| 99_fake | x = 0.25 | x = 2.00 |" in text
    assert "`cpu`, digits**" in text and "1 of 1 claims held" in text and "0 of 1 claims held" in text
    assert not update_readme(readme, runs), "a second rewrite from the same files changes nothing"


def test_update_readme_refuses_a_readme_without_the_markers(tmp_path, monkeypatch):
    readme = tmp_path / "README.md"
    readme.write_text("no block here\n")
    with pytest.raises(ValueError, match="readme=.*add those two lines"):
        update_readme(readme, [_fake_run(monkeypatch, tmp_path, "digits", 0.25)])


def test_strict_run_fails_when_a_claim_does_not_hold(tmp_path, monkeypatch):
    import modlearn.series as series

    monkeypatch.setitem(CLAIMS, "99_fake", [Claim("x is small", lambda r: r["x"] < 1)])
    (tmp_path / "src").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "src" / "99_fake.ipynb")
    values = {"x": 2.0}
    monkeypatch.setattr(series.execute, "execute_notebook", lambda *a, **k: series.NotebookResults(values))
    argv = ["--src", str(tmp_path / "src"), "--out", str(tmp_path / "out"), "--results", str(tmp_path)]
    assert main(argv) == 0, "without --strict a claim that did not hold is reported, not fatal"
    assert main([*argv, "--strict"]) == 1
    values["x"] = 0.5
    assert main([*argv, "--strict"]) == 0


def test_headless_kernels_hide_progress_bars_and_the_runner_restores_the_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    path = _notebook(
        tmp_path,
        "env.ipynb",
        "import os\nimport modlearn as ml\nml.record('tqdm_disable', os.environ.get('TQDM_DISABLE'))",
        "ml.record('bar_shown', ml.train.show_progress(ml.TrainConfig()))",
    )
    results = execute_notebook(path, tmp_path / "out")
    assert results == {"tqdm_disable": "1", "bar_shown": False}
    import os

    assert "TQDM_DISABLE" not in os.environ


def test_fit_progress_follows_its_config_and_the_environment(monkeypatch, capsys):
    import torch

    import modlearn as ml

    splits = (ml.data.Split(torch.randn(32, 1, 2, 2), torch.randint(0, 2, (32,))) for _ in range(3))
    data = ml.data.Dataset("toy", *splits, 2, "random toy data")

    def bar_shown(**config) -> bool:
        model = ml.make_model("mlp", (1, 2, 2), 2, hidden=(8,))
        ml.fit(model, data, ml.TrainConfig(epochs=None, max_steps=2, batch_size=16, **config))
        return "2/2" in capsys.readouterr().err

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert bar_shown(progress=True) and not bar_shown(progress=False)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert not bar_shown(progress=True)


def test_a_progress_bar_in_a_notebook_leaves_text_not_a_widget_once_it_closes(tmp_path, monkeypatch):
    """A closed tqdm widget saved in a notebook reopens as "Error displaying widget: model not found":
    `fit`'s bar is replaced by one line of text when it closes (finished, or interrupted)."""
    from nbclient import NotebookClient

    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    fit = (
        "import torch\nimport modlearn as ml\n"
        "x, y = torch.randn(64, 1, 2, 2), torch.randint(0, 2, (64,))\n"
        "model = ml.make_model('mlp', (1, 2, 2), 2, hidden=(8,))\n"
        "ml.fit(model, (x, y), ml.TrainConfig(epochs=None, max_steps={steps}, batch_size=16, {extra}));"
    )
    stop = "hooks=[lambda state: (_ for _ in ()).throw(KeyboardInterrupt) if state.step == 2 else None]"
    path = _notebook(
        tmp_path,
        "bar.ipynb",
        fit.format(steps=4, extra=""),
        fit.format(steps=6, extra="").replace("));", f"), {stop});"),
    )
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    finished, stopped = (nb.cells[i].outputs for i in (1, 2))
    widget = "application/vnd.jupyter.widget-view+json"
    assert not any(widget in output.get("data", {}) for output in finished + stopped)
    assert "4/4 optimizer steps" in finished[-1]["data"]["text/plain"]
    assert "(stopped early)" in str(stopped)


def test_a_notebook_whose_kernel_went_idle_runs_once_more_and_is_reported(tmp_path, monkeypatch):
    import modlearn.series as series

    (tmp_path / "src").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "src" / "99_fake.ipynb")
    calls = []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) in failing:
            raise KernelIdleError("99_fake.ipynb: cell 3 was still running but ...")
        return series.NotebookResults({"x": 1})

    monkeypatch.setattr(series.execute, "execute_notebook", flaky)
    argv = ["--src", str(tmp_path / "src"), "--out", str(tmp_path / "out"), "--results", str(tmp_path)]
    failing = {1}
    assert main(argv) == 0 and len(calls) == 2
    assert json.loads((tmp_path / "results.json").read_text())["run"]["retried"] == ["99_fake.ipynb"]
    calls.clear()
    failing = {1, 2}
    assert main(argv) == 1, "a second idle kernel fails the notebook"


def test_make_run_ends_with_the_scoreboard_and_the_readme_carries_it(tmp_path, monkeypatch, capsys):
    import modlearn.series as series

    table = "| method | C |\n|---|---|\n| E2E | 0.4 |"
    monkeypatch.setitem(CLAIMS, "09_scoreboard", [Claim("C is recorded", lambda r: "scoreboard_table" in r)])
    (tmp_path / "src").mkdir()
    nbformat.write(nbformat.v4.new_notebook(), tmp_path / "src" / "09_scoreboard.ipynb")
    values = {"scoreboard_table": table, "steps": 600, "dataset": "digits", "budget": "cpu"}
    monkeypatch.setattr(series.execute, "execute_notebook", lambda *a, **k: series.NotebookResults(values))
    argv = ["--src", str(tmp_path / "src"), "--out", str(tmp_path / "out"), "--results", str(tmp_path)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "Scoreboard (notebook 09: one MLP, 600 steps" in printed and printed.rstrip().endswith(table)
    assert printed.index("Scoreboard") > printed.index("Every recorded value")
    readme = tmp_path / "README.md"
    readme.write_text(f"{README_BEGIN}\n{README_END}\n")
    update_readme(readme, [tmp_path / "results.json"])
    assert table in readme.read_text() and "reference run `cpu`, digits" in readme.read_text()


def test_jobs_run_untimed_notebooks_side_by_side_and_timed_ones_alone(tmp_path, monkeypatch):
    """`--jobs 2`: the two untimed notebooks overlap, each keeps its own peak memory (the big one's
    300 MB is not counted in the small one's), the timed one starts after both ended; series order kept."""
    from modlearn import series

    clock = "import time, modlearn as ml\nml.record('start', time.time())"
    end = "time.sleep(4)\nml.record('end', time.time())"
    _notebook(tmp_path, "01_big.ipynb", clock, f"block = b'x' * (300 * 2**20)\n{end}")
    _notebook(tmp_path, "02_small.ipynb", clock, end)
    _notebook(tmp_path, "03_timed.ipynb", clock, end)
    monkeypatch.setattr(series.schedule, "runs_alone", lambda stem: stem == "03_timed")
    paths = series.notebooks(tmp_path)
    results, failed, retried = series.run_series(paths, str(tmp_path / "out"), "smoke", jobs=2)
    assert (failed, retried, list(results)) == ([], [], ["01_big", "02_small", "03_timed"])
    one, two, timed = results.values()
    assert one["start"] < two["end"] and two["start"] < one["end"], f"not side by side: {results}"
    assert timed["start"] > max(one["end"], two["end"]), f"the timed notebook shared the machine: {results}"
    assert one.peak_tree_mb > 300 and two.peak_tree_mb < one.peak_tree_mb - 250, (
        f"peaks {one.peak_tree_mb:.0f} / {two.peak_tree_mb:.0f} MB: each notebook's own kernel, not both"
    )


def test_the_notebooks_whose_claims_time_code_run_alone():
    """`Claim(timed=True)` marks a check of wall-clock times (notebook 03 only records its timings)."""
    assert [path.stem for path in notebooks(TUTORIALS) if runs_alone(path.stem)] == [
        "02_local_training",
        "06_bimt",
        "07_circuit_discovery",
    ]


def test_two_passes_share_one_pool_each_with_its_own_data_and_a_share_of_the_cpus(tmp_path, monkeypatch):
    """`--run` twice: four notebooks in one pool of two, the longest by its reference first; each
    kernel sees its own pass's MODLEARN_DATA (unset for '-') and MODLEARN_THREADS (its CPU share);
    each pass writes its own results, its data folder in them."""
    from modlearn import series

    src = tmp_path / "src"
    src.mkdir()
    seen = "import os, time, modlearn as ml\nml.record('start', time.time())\n" + (
        "ml.record('data', os.environ.get('MODLEARN_DATA', '-'))\n"
        "ml.record('threads', os.environ.get('MODLEARN_THREADS'))\ntime.sleep(2)"
    )
    _notebook(src, "01_short.ipynb", seen)
    _notebook(src, "02_long.ipynb", seen)
    reference = tmp_path / "reference.json"
    reference.write_text(json.dumps({"notebooks": {"01_short": {"seconds": 1}, "02_long": {"seconds": 9}}}))
    monkeypatch.setenv("MODLEARN_DATA", "/the/callers/folder")
    argv = ["--budget", "smoke", "--src", str(src), "--jobs", "2"]
    passes = ["--run", "-", str(tmp_path / "a"), str(reference), "--run", str(tmp_path), str(tmp_path / "b")]
    assert series.main(argv + passes) == 0
    runs = {name: json.loads((tmp_path / name / "results.json").read_text()) for name in "ab"}
    assert runs["a"]["run"]["MODLEARN_DATA"] == "(not set: embedded digits)"
    assert runs["b"]["run"]["MODLEARN_DATA"] == str(tmp_path)
    recorded = {
        (name, stem): entry["results"]
        for name, run in runs.items()
        for stem, entry in run["notebooks"].items()
    }
    assert {key: r["data"] for key, r in recorded.items()} == {
        ("a", "01_short"): "-",
        ("a", "02_long"): "-",
        ("b", "01_short"): str(tmp_path),
        ("b", "02_long"): str(tmp_path),
    }
    share = str(series.threads_beside(2))
    assert {r["threads"] for r in recorded.values()} == {share}
    first_two = sorted(recorded, key=lambda key: recorded[key]["start"])[:2]
    assert ("a", "02_long") in first_two, f"the longest by the reference did not start first: {recorded}"
    assert (tmp_path / "b" / "tutorials" / "02_long.ipynb").exists()
