# The two commands a newcomer needs:
#   make serve   install, then run the server on its embedded defaults
#   make test    install, then run the whole test suite (needs PostgreSQL and Redis running;
#                Node.js for the browser client in client/ and the interop tests)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install serve test lint bench chromium native-toolchain inspector

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

client/node_modules/.package-lock.json: client/package-lock.json
	cd client && npm ci --no-audit --no-fund --loglevel=error

# The inspector page's tools (esbuild, TypeScript) and playwright-core for the browser tests;
# playwright never downloads a browser: the tests drive Debian's Chromium.
inspector/node_modules/.package-lock.json: inspector/package-lock.json
	cd inspector && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error

# Rebuild the committed page assets in server/static/inspector/ from inspector/src.
inspector: inspector/node_modules/.package-lock.json
	cd inspector && npm run build

CHROMIUM ?= /usr/bin/chromium
chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; \
	fi

# The C load generator of bench/native/ (built on first use by bench/native_gen.py, and by
# its test) needs a C compiler and libcrypto's headers.
native-toolchain:
	@if ! command -v cc >/dev/null || [ ! -f /usr/include/openssl/evp.h ]; then \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q gcc libssl-dev; \
	fi

test: install tests/interop/node_modules/.package-lock.json client/node_modules/.package-lock.json inspector/node_modules/.package-lock.json chromium native-toolchain
	$(BIN)/ruff check .
	$(BIN)/mypy
	cd client && npm run --silent build
	$(BIN)/python -m pytest

bench: install tests/interop/node_modules/.package-lock.json native-toolchain
	$(BIN)/python -m bench.run_all
