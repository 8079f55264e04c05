# torii — the two commands: `make run` (the product, embedded defaults) and `make test` (the suite).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY     := $(BIN)/python
PORT   ?= 8000

.PHONY: install run test test-fast bench lint typecheck check-deploy clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)

# Every install takes its exact versions from requirements.lock (constraints).
$(VENV)/.installed: $(BIN)/activate pyproject.toml requirements.lock
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[dev]'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

install: $(VENV)/.installed node_modules/.installed

# The embedded PostgreSQL (unless DATABASE_URL is set), migrations, the first admin, then web, worker,
# beat and the simulator (Procfile.dev). Ctrl-C stops them all, the database server included.
run: install
	PORT=$(PORT) $(PY) scripts/run.py

test: install
	$(PY) scripts/run_tests.py $(ARGS)

bench: install
	$(PY) bench/run.py $(ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy .

clean:
	rm -rf var staticfiles
