# One target per habit. Everything a target needs is installed by the target itself.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 2024

.PHONY: run test test-py test-js check format bench fuzz clean

# `make run` needs only crongraph and its runtime dependencies; the test tools come with `make test`/`make check`.
RUN_STAMP  := $(VENV)/.installed-run
TEST_STAMP := $(VENV)/.installed-test

$(BIN)/python:
	@echo "==> creating the virtualenv in $(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	@echo "==> installing crongraph and its runtime dependencies into $(VENV) (a minute the first time)"
	$(BIN)/pip install --quiet --progress-bar off -e .
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	@echo "==> installing crongraph with its test dependencies into $(VENV)"
	$(BIN)/pip install --quiet --progress-bar off -e '.[test]'
	touch $@ $(RUN_STAMP)

tests/js/node_modules/.installed: tests/js/package.json tests/js/package-lock.json
	cd tests/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

benchmarks/js/node_modules/.installed: benchmarks/js/package.json benchmarks/js/package-lock.json
	cd benchmarks/js && npm ci --no-audit --no-fund --loglevel=error
	touch $@

run: $(RUN_STAMP)  ## start the development server on http://$(HOST):$(PORT)
	@echo "==> starting $(BIN)/crongraph dev (\`source $(BIN)/activate\` puts \`crongraph\` on your PATH)"
	$(BIN)/crongraph dev --host $(HOST) --port $(PORT)

test: check tests/js/node_modules/.installed  ## `make check`, then the whole suite: Python (unit, storage, API, e2e, replicas) on SQLite, again on PostgreSQL, and the JavaScript SDK
	bash tests/support/system_deps.sh
	$(BIN)/python -m pytest -q
	$(BIN)/python -m pytest -q --backend=postgres tests/storage tests/e2e
	cd tests/js && CRONGRAPH_BIN=$(CURDIR)/$(BIN)/crongraph node --test --test-reporter=spec

check: $(TEST_STAMP)  ## lint, format check and mypy strict
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy src

format: $(TEST_STAMP)
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

bench: $(TEST_STAMP) benchmarks/js/node_modules/.installed  ## the README's figures, each against a fresh local server (see benchmarks/README.md)
	$(BIN)/python benchmarks/runs.py
	$(BIN)/python benchmarks/crons.py
	$(BIN)/python benchmarks/thread_stream.py
	$(BIN)/python benchmarks/soak.py

fuzz: $(TEST_STAMP)  ## a longer, randomly seeded fuzzing pass over /openapi.json on both backends (no 5xx allowed)
	CRONGRAPH_FUZZ_EXAMPLES=$${CRONGRAPH_FUZZ_EXAMPLES:-50} CRONGRAPH_FUZZ_SEED=$${CRONGRAPH_FUZZ_SEED:-$$RANDOM$$RANDOM} \
	  $(BIN)/python -m pytest -q tests/e2e/test_fuzz_openapi.py
	CRONGRAPH_FUZZ_EXAMPLES=$${CRONGRAPH_FUZZ_EXAMPLES:-50} CRONGRAPH_FUZZ_SEED=$${CRONGRAPH_FUZZ_SEED:-$$RANDOM$$RANDOM} \
	  $(BIN)/python -m pytest -q --backend=postgres tests/e2e/test_fuzz_openapi.py

clean:
	rm -rf $(VENV) .crongraph tests/js/node_modules benchmarks/js/node_modules
