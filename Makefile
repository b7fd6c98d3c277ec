# Two commands on a fresh machine: `make demo` runs the demo, `make test` runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

$(BIN)/trident: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test,demo]'
	touch $(BIN)/trident

.PHONY: demo test test-fast bench
demo: $(BIN)/trident
	$(BIN)/trident demo

test: $(BIN)/trident
	$(BIN)/python -m pytest -q

test-fast: $(BIN)/trident   # the unit layer: no processes, no Redis, under 20 s
	TESTS_FAST=1 $(BIN)/python -m pytest -q -m 'not system' tests/unit

bench: $(BIN)/trident
	$(BIN)/pip install -q -e '.[test,demo,bench]'
	$(BIN)/python -m bench
