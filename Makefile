# The two commands a newcomer needs:
#   make serve   install, then run the server on its embedded defaults
#   make test    install, then run the whole test suite (needs PostgreSQL and Redis running)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install serve test lint bench

$(BIN)/flowai: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/flowai

install: $(BIN)/flowai

# Data lives in FLOWAI_DATA_DIR, else ~/.local/share/flowai (printed at start). SIGTERM to the
# server ends it with status 0; make itself, when signalled, still dies of the signal, so a
# supervisor should run $(BIN)/flowai serve directly.
serve: install
	$(BIN)/flowai serve

tests/interop/node_modules/.package-lock.json: tests/interop/package-lock.json
	cd tests/interop && npm ci --no-audit --no-fund --loglevel=error

test: install tests/interop/node_modules/.package-lock.json
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: install tests/interop/node_modules/.package-lock.json
	$(BIN)/python -m bench.run_all
