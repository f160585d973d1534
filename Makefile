# mms-tracker: `make run` starts the local stack, `make test` runs the whole suite.
# Both set up what they need first (.venv, pip, npm ci) and are safe to repeat.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

.PHONY: setup run test lint bench clean

setup: $(PIP_STAMP) $(NPM_STAMP)

$(PIP_STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: setup
	$(PY) -m localdev.stack

test: setup
	$(PY) -m pytest

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy

clean:
	rm -rf $(VENV) node_modules .azurite .pytest_cache .mypy_cache .ruff_cache
