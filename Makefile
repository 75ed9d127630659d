# The two commands: `make run` (the whole series, headless) and `make test`. Each creates .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BUDGET ?= cpu
# notebooks the series runs at a time (those whose claims time code always run alone)
JOBS ?= 2
DATA ?= ../shared/data
STAMP := $(VENV)/.modlearn-installed
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: venv run test check test-series readme lint format lab bench clean site test-browser test-site test-binder platform-deps

venv: $(STAMP)

# jupyter/overrides.json: JupyterLab saves widget state with the notebook, so an explorer reopened
# without a kernel shows its last picture
$(STAMP): pyproject.toml jupyter/overrides.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test,lab]'
	install -D -m 644 jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	$(BIN)/python -m ipykernel install --prefix $(VENV) --name python3 --display-name "Python 3 (modlearn)" >/dev/null
	touch $(STAMP)

## Execute every notebook of tutorials/ with papermill into build/tutorials and print their results.
run: venv
	$(BIN)/python -m modlearn.series --budget $(BUDGET) --src tutorials --out build/tutorials

# the test suite at `smoke` (make check, make test)
PYTEST_SMOKE := MPLBACKEND=Agg MODLEARN_BUDGET=smoke $(BIN)/python -m pytest -q tests --ignore=tests/platforms

## The quick check while working: lint, then the unit tests without executing any notebook (about 3 minutes).
check: lint
	$(PYTEST_SMOKE) --ignore=tests/test_notebooks.py -n $(JOBS) -m "not notebook"

## Unit tests, and every notebook executed at BUDGET=smoke with its claims (modlearn.claims) asserted:
## JOBS pytest workers (pytest-xdist, each notebook's tests on one worker), then the notebooks whose claims
## time code with the machine to themselves (marker `alone`).
test: venv
	$(PYTEST_SMOKE) -n $(JOBS) --dist loadgroup -m "not alone"
	$(PYTEST_SMOKE) -m alone

## The new user's run, checked: the whole series at `cpu` on digits (MODLEARN_DATA unset) and, when DATA
## (default ../shared/data) holds it, on MNIST: both passes share one pool of JOBS notebooks, the longest
## first (by the reference results); fails unless every notebook ran and every claim held.
test-series: venv
	$(BIN)/python -m modlearn.series --budget cpu --strict --jobs $(JOBS) --run - build/cpu-digits results/cpu-digits.json \
		$(if $(wildcard $(DATA)),--run "$(abspath $(DATA))" build/cpu-mnist results/cpu-mnist.json)

## Copy the last test-series results into results/ and regenerate README.md's reference-results table.
readme: venv
	mkdir -p results
	cp build/cpu-digits/results.json results/cpu-digits.json
	cp build/cpu-mnist/results.json results/cpu-mnist.json
	$(BIN)/python -m modlearn.series --update-readme results/cpu-digits.json results/cpu-mnist.json

## ruff: lint (library, tests, benchmarks, notebooks) and the format check.
lint: venv
	$(BIN)/ruff check modlearn tests benchmarks tools tutorials docs
	$(BIN)/ruff format --check modlearn tests benchmarks tools docs

## Apply ruff's formatting and safe fixes.
format: venv
	$(BIN)/ruff format modlearn tests benchmarks tools docs
	$(BIN)/ruff check --fix modlearn tests benchmarks tools tutorials docs

## JupyterLab on tutorials/
lab: venv
	$(BIN)/jupyter lab --notebook-dir=tutorials $(ROOT_FLAG)

## Speed and memory benchmarks (ratios measured in one run)
bench: venv
	@for script in benchmarks/*.py; do echo "== $$script"; $(BIN)/python $$script || exit 1; done

## The platform checks' tools: playwright (drives Debian's `chromium`, never downloads a browser), Sphinx, myst-nb.
PLATFORM_STAMP := $(VENV)/.modlearn-platform-installed
platform-deps: $(PLATFORM_STAMP)
$(PLATFORM_STAMP): $(STAMP)
	$(BIN)/python -m pip install --disable-pip-version-check -q -e '.[test,lab,browser,site]'
	touch $(PLATFORM_STAMP)

## JupyterLab in Chromium: a copy of every notebook at smoke, Run All, each explorer operated, saved and reopened.
test-browser: platform-deps
	MODLEARN_PLATFORMS=1 MPLBACKEND= MODLEARN_BUDGET=smoke $(BIN)/python -m pytest -q tests/platforms/test_jupyterlab.py

## The course site (Sphinx + myst-nb) from the executed notebooks in SITE_SRC (`make run` writes them) into build/site.
SITE_SRC ?= build/tutorials
site: platform-deps
	$(BIN)/python docs/build_site.py --src $(SITE_SRC) --out build/site --staging build/site-src

## `make site`, then every page opened in Chromium: it loads, its images load, no broken internal link, no console error.
test-site: site
	MODLEARN_PLATFORMS=1 $(BIN)/python -m pytest -q tests/platforms/test_site.py

## The Binder recipe alone (binder/), in a fresh venv, then one notebook under binder/start; install size < 2 GB.
test-binder: platform-deps
	MODLEARN_PLATFORMS=1 $(BIN)/python -m pytest -q -rP tests/platforms/test_binder.py

clean:
	rm -rf build .pytest_cache
