# One target per habit. Everything a target needs is installed by the target itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 2024

.PHONY: run test test-py test-js check format bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

benchmarks/js/node_modules/.installed: benchmarks/js/package.json benchmarks/js/package-lock.json
	cd benchmarks/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: $(STAMP)  ## start the development server on http://$(HOST):$(PORT)
	$(BIN)/crongraph dev --host $(HOST) --port $(PORT)

test: $(STAMP) tests/js/node_modules/.installed  ## the whole suite: Python (unit, storage, API, e2e, replicas) on SQLite, again on PostgreSQL, and the JavaScript SDK
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/python -m pytest -q
	$(BIN)/python -m pytest -q --backend=postgres tests/storage tests/e2e
	cd tests/js && CRONGRAPH_BIN=$(CURDIR)/$(BIN)/crongraph node --test --test-reporter=spec

check: $(STAMP)  ## lint and format check
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(STAMP) benchmarks/js/node_modules/.installed  ## the README's figures, each against a fresh local server (see benchmarks/README.md)
	$(BIN)/python benchmarks/runs.py
	$(BIN)/python benchmarks/crons.py
	$(BIN)/python benchmarks/thread_stream.py

clean:
	rm -rf $(VENV) .crongraph tests/js/node_modules benchmarks/js/node_modules
