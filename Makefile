# Roomkey — the two commands are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8000
HOST   ?= 127.0.0.1
BIN     = $(VENV)/bin
WORKERS ?=

.PHONY: run test bench lint install install-dev migrate serve clean js-deps

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Roomkey needs Python 3.11+ (set PYTHON=...)")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps re-run the install when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

migrate: install
	$(BIN)/python manage.py migrate --noinput

run: migrate
	@$(BIN)/python manage.py seed_demo --base-url http://$(HOST):$(PORT)
	$(BIN)/uvicorn config.asgi:application --host $(HOST) --port $(PORT) --ws websockets-sansio --lifespan off --no-proxy-headers

# Production: uvicorn, one worker per core (WORKERS= to change), with the server's limits matched
# to the application's (config/serve.py). Reads DATABASE_URL, REDIS_URL, DJANGO_* from the
# environment; migrates first.
serve: migrate
	HOST=$(HOST) PORT=$(PORT) WORKERS=$(WORKERS) $(BIN)/python -m config.serve

test: install-dev js-deps
	$(BIN)/pytest $(PYTEST_ARGS)

# The real @signalwire/js clients for tests/interop (pinned by package-lock.json), when Node
# is installed; without it those tests skip (or fail under ROOMKEY_REQUIRE_NODE=1).
JS_DIR = tests/interop/js
js-deps:
	@if command -v node >/dev/null 2>&1; then \
	  if [ ! -f $(JS_DIR)/node_modules/.installed ] || \
	     [ $(JS_DIR)/package-lock.json -nt $(JS_DIR)/node_modules/.installed ]; then \
	    (cd $(JS_DIR) && npm ci --no-audit --no-fund --loglevel=error) && \
	    touch $(JS_DIR)/node_modules/.installed; \
	  fi; \
	else echo "node not found: the @signalwire/js interop tests will skip"; fi

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: install-dev
	$(BIN)/python -m bench.chat_tokens
	$(BIN)/python -m bench.tool_tokens
	$(BIN)/python -m bench.voice_tokens
	$(BIN)/python -m bench.chat_history
	$(BIN)/python -m bench.limits

clean:
	rm -rf $(VENV) db.sqlite3 .dev-secret-key
