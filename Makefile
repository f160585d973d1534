# mms-tracker: `make run` starts the local stack, `make test` runs the whole suite.
# Both set up what they need first (.venv, pip, npm ci) and are safe to repeat.

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed
# Offline infra checks (checkov brings its own Bicep parser) live in their own venv: their pins
# would fight the app's. A third venv holds requirements.txt alone, to import the app as Azure does.
INFRA_VENV := .venv-infra
INFRA_STAMP := $(INFRA_VENV)/.installed
RUNTIME_VENV := .venv-runtime
RUNTIME_STAMP := $(RUNTIME_VENV)/.installed
# The azure-functions copies Microsoft's Python worker bundles (oldest able to run the app, newest),
# each alone in .layouts/, for tests/infra/test_worker_layout.py (which installs them itself if missing).
WORKER_LIBRARIES := 1.20.0 1.22.0b4
LAYOUT_STAMPS := $(foreach v,$(WORKER_LIBRARIES),.layouts/azure-functions-$(v)/.installed)
# requirements.txt is a lock compiled from requirements.in by pip-tools, kept in a venv of its own.
LOCK_VENV := .venv-lock
PIP_TOOLS := pip-tools==7.6.2
LOCK_COMMAND := pip-compile --strip-extras --no-emit-index-url --no-emit-find-links --output-file=requirements.txt requirements.in

.PHONY: setup setup-infra lock run test fuzz lint bench mutation clean

setup: $(PIP_STAMP) $(NPM_STAMP)

setup-infra: $(INFRA_STAMP) $(RUNTIME_STAMP) $(LAYOUT_STAMPS)

$(PIP_STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(INFRA_STAMP): requirements-infra.txt
	test -x $(INFRA_VENV)/bin/python || $(PYTHON) -m venv $(INFRA_VENV)
	$(INFRA_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-infra.txt
	touch $@

$(RUNTIME_STAMP): requirements.txt
	test -x $(RUNTIME_VENV)/bin/python || $(PYTHON) -m venv $(RUNTIME_VENV)
	$(RUNTIME_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --no-deps -r requirements.txt
	touch $@

.layouts/azure-functions-%/.installed: $(PIP_STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --upgrade --target $(@D) azure-functions==$*
	touch $@

# Recompile requirements.txt after editing requirements.in (the lock is what deploys and what CI tests).
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || ( $(PYTHON) -m venv $(LOCK_VENV) && $(LOCK_VENV)/bin/python -m pip install --quiet --disable-pip-version-check $(PIP_TOOLS) )
	CUSTOM_COMPILE_COMMAND="$(LOCK_COMMAND)" $(LOCK_VENV)/bin/$(LOCK_COMMAND) --quiet

$(NPM_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: setup
	$(PY) -m localdev.stack

test: setup setup-infra
	$(PY) -m pytest --cov --cov-report=term

bench: setup
	$(PY) -m localdev.bench

# The hostile-input suite at length, with a fresh random seed each run (make test runs it bounded).
FUZZ_EXAMPLES ?= 2000
fuzz: setup
	FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) FUZZ_RANDOM=1 $(PY) -m pytest -p no:cacheprovider tests/e2e/test_fuzz.py \
		tests/e2e/test_campaign_hostile.py tests/host/test_topic_hostile.py
# Mutation testing of the domain, the report parser and request validation against their unit tests (~6 min; not in `test`).
mutation: setup
	$(PY) -m localdev.mutation

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(VENV)/bin/lint-imports --no-cache

clean:
	rm -rf $(VENV) $(INFRA_VENV) $(RUNTIME_VENV) $(LOCK_VENV) .layouts node_modules .azurite .pytest_cache .mypy_cache .ruff_cache mutants
