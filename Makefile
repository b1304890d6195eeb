# mnbench: two commands on a fresh machine.
#   make demo   sets itself up and runs the default sweep on this machine's CPU
#   make test   sets itself up and runs the whole suite (ruff, mypy, pytest)
#
# The virtual environment lives outside the repository (cached across clones), keyed by
# the Python version and the hash of pyproject.toml so a dependency change rebuilds it.

PYTHON ?= python3
CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/mnbench
PYVER := $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
DEPS_HASH := $(shell cat pyproject.toml | sha256sum | cut -c1-12)
VENV ?= $(CACHE)/venv-py$(PYVER)-$(DEPS_HASH)
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
PIP := $(BIN)/python -m pip --quiet --disable-pip-version-check
PYTEST_ARGS ?=
DEMO_DIR ?= demo
# The demo's measurement budget (docs/measurement.md, "The demo's choices"): short trials,
# because the spread between fresh processes dwarfs a tight interval within one.
DEMO_TIMING ?= --min-time 0.3 --max-time 1.5
DEMO_STANDARD ?= --alpha 1.0 0.25 --resolution 224 128 --trials 2
DEMO_LAYERS ?= --alpha 0.5 --resolution 160 --trials 1 --target-ci 2

.PHONY: demo demo-env test lint typecheck pytest venv clean

# The demo needs the project only; the test tools are installed on top by $(DEV_STAMP).
# setuptools announces "Editable installation." on every editable install (an information-only
# warning, pypa/packaging-problems#558); it is silenced by its message, nothing else is.
$(STAMP) $(DEV_STAMP): export PYTHONWARNINGS = ignore:Editable installation
$(STAMP): pyproject.toml
	@mkdir -p $(CACHE)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip
	$(PIP) install -e .
	@touch $(STAMP)

$(DEV_STAMP): $(STAMP)
	$(PIP) install -e '.[dev]'
	@touch $(DEV_STAMP)

venv: $(DEV_STAMP)

demo-env: $(STAMP)

# Three runs (the grid; both variants side by side on the corner cells, with per-node
# profiles; the 13 blocks as layer probes), then one report on the newest run of each.
demo: $(STAMP)
	@mkdir -p $(DEMO_DIR)
	cd $(DEMO_DIR) && $(BIN)/mnbench run --label demo $(DEMO_TIMING)
	cd $(DEMO_DIR) && $(BIN)/mnbench run --label demo-standard --variant separable standard \
		--profile $(DEMO_STANDARD) $(DEMO_TIMING)
	cd $(DEMO_DIR) && $(BIN)/mnbench layers --label demo-layers $(DEMO_LAYERS) \
		$(DEMO_TIMING) > layers.txt
	cd $(DEMO_DIR) && $(BIN)/mnbench report --run demo demo-standard demo-layers \
		--out $(CURDIR)/$(DEMO_DIR)/report

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check mobilenet devices results reports harness

typecheck: $(DEV_STAMP)
	$(BIN)/mypy

pytest: $(DEV_STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache *.egg-info
