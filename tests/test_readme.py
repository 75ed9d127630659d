"""The README's table of reference results is the output of real runs, not typing: its block equals
what `make readme` renders from the committed `results/*.json` of `make test-series`, and every claim
held on those runs."""

import json

from support import ROOT

from modlearn.claims import CLAIMS
from modlearn.series import README_BEGIN, README_END, readme_results_block

RUNS = {"cpu-digits.json": ["digits"], "cpu-mnist.json": ["mnist"]}


def reference_runs() -> list[dict]:
    return [json.loads((ROOT / "results" / name).read_text()) for name in RUNS]


def test_readme_block_is_rendered_from_the_reference_runs():
    readme = (ROOT / "README.md").read_text()
    block = README_BEGIN + readme.split(README_BEGIN, 1)[1].split(README_END, 1)[0] + README_END
    assert block == readme_results_block(reference_runs()), (
        "README.md's reference-results block differs from results/*.json: run `make test-series` "
        "then `make readme`"
    )


def test_reference_runs_are_the_new_users_runs_and_every_claim_held():
    for (name, datasets), run in zip(RUNS.items(), reference_runs(), strict=True):
        assert run["run"]["budget"] == "cpu" and run["run"]["datasets"] == datasets, name
        assert not run["run"]["failed"], name
        assert sorted(run["notebooks"]) == sorted(CLAIMS), f"{name}: every notebook of the series ran"
        unheld = [c["claim"] for e in run["notebooks"].values() for c in e["claims"] if c["held"] is not True]
        assert not unheld, f"{name}: claims that did not hold on the reference run: {unheld}"


def test_reference_runs_checked_the_claims_the_text_makes_now():
    for name, run in zip(RUNS, reference_runs(), strict=True):
        for stem, entry in run["notebooks"].items():
            assert [c["claim"] for c in entry["claims"]] == [c.text for c in CLAIMS[stem]], (
                f"{name}, {stem}: the claims changed since the reference run: rerun `make test-series` "
                "and `make readme`"
            )
