# Two commands on a fresh machine: `make demo` runs the demo, `make test` runs the tests.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

# Each step says what it does; pip's own progress (one line per package, bars) only on a terminal,
# so `make test` in CI or piped to a file stays a few lines.
PIP_INSTALL = if [ -t 1 ]; then quiet=; else quiet=-q; fi; $(BIN)/pip install $$quiet

$(BIN)/trident: pyproject.toml
	@echo "==> creating the virtualenv $(VENV) with $(PY)"
	@$(PY) -m venv $(VENV)
	@echo "==> upgrading pip"
	@$(PIP_INSTALL) --upgrade pip
	@echo "==> installing Trident with its test and demo extras (about a minute the first time)"
	@$(PIP_INSTALL) -e '.[test,demo]'
	@touch $(BIN)/trident
	@echo "==> ready: $(BIN)/trident"

.PHONY: demo test test-fast bench
demo: $(BIN)/trident
	$(BIN)/trident demo

test: $(BIN)/trident
	$(BIN)/python -m pytest -q

test-fast: $(BIN)/trident   # the unit layer: no processes, no Redis, under 20 s
	TESTS_FAST=1 $(BIN)/python -m pytest -q -m 'not system' tests/unit

bench: $(BIN)/trident
	@echo "==> installing the bench extra (matplotlib, psutil, py-spy)"
	@$(PIP_INSTALL) -e '.[test,demo,bench]'
	$(BIN)/python -m bench
