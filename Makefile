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
# Microsoft's execution runtime for Python 3.13+ (azure-functions-runtime) runs the app in a Python 3.13
# side venv: requirements.in resolved on 3.13 within the lock's pins (all but azure-functions, which is
# 2.x there) plus requirements-py313.txt, and the protocol's messages compiled from
# localdev/runtime_host/proto. Python 3.13 is python3.13, or pyenv's; without it tests/runtime is skipped.
PY313_VENV := .venv-py313
PY313_STAMP := $(PY313_VENV)/.installed
PYTHON313 ?= $(firstword $(shell for p in python3.13 $$(pyenv root 2>/dev/null)/versions/3.13*/bin/python3.13; do \
	"$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null && echo "$$p" && break; done))
# requirements.txt is a lock compiled from requirements.in by pip-tools, kept in a venv of its own.
LOCK_VENV := .venv-lock
PIP_TOOLS := pip-tools==7.6.2
LOCK_COMMAND := pip-compile --strip-extras --no-emit-index-url --no-emit-find-links --output-file=requirements.txt requirements.in

.PHONY: setup setup-infra setup-runtime lock run test fuzz lint bench mutation clean

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

setup-runtime:
ifeq ($(PYTHON313),)
	@echo "make: no Python 3.13 (python3.13, or pyenv's versions/3.13*): $(PY313_VENV) not built; tests/runtime will be skipped"
else
setup-runtime: $(PY313_STAMP)
endif

$(PY313_STAMP): requirements.in requirements.txt requirements-py313.txt localdev/runtime_host/proto/FunctionRpc.proto
	test -x $(PY313_VENV)/bin/python || $(PYTHON313) -m venv $(PY313_VENV)
	grep -v '^azure-functions==' requirements.in > $(PY313_VENV)/app-requirements.in
	grep -v '^azure-functions==' requirements.txt > $(PY313_VENV)/app-constraints.txt
	$(PY313_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r $(PY313_VENV)/app-requirements.in -r requirements-py313.txt -c $(PY313_VENV)/app-constraints.txt
	$(PY313_VENV)/bin/python -m pip check --disable-pip-version-check
	mkdir -p $(PY313_VENV)/protos
	$(PY313_VENV)/bin/python -m grpc_tools.protoc -I localdev/runtime_host/proto \
		--python_out=$(PY313_VENV)/protos localdev/runtime_host/proto/FunctionRpc.proto
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

test: setup setup-infra setup-runtime
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
	rm -rf $(VENV) $(INFRA_VENV) $(RUNTIME_VENV) $(PY313_VENV) $(LOCK_VENV) .layouts node_modules .azurite .pytest_cache .mypy_cache .ruff_cache mutants
