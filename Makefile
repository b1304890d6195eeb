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
PYTEST_ARGS ?=
DEMO_DIR ?= demo

.PHONY: demo test lint typecheck pytest venv clean

$(STAMP): pyproject.toml
	@mkdir -p $(CACHE)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	@mkdir -p $(DEMO_DIR)
	cd $(DEMO_DIR) && $(BIN)/mnbench run --label demo
	cd $(DEMO_DIR) && $(BIN)/mnbench results
	cd $(DEMO_DIR) && $(BIN)/mnbench report

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check harness devices results reports

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

clean:
	rm -rf $(DEMO_DIR) .pytest_cache .mypy_cache .ruff_cache *.egg-info
