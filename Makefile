# Kinship developer commands. `make run` and `make test` are the two the README promises;
# the rest are helpers. `make` alone lists the targets.

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VENV_PY := $(VENV)/bin/python
FLASK := $(VENV)/bin/flask --app wsgi

# Stamp files: reinstall only when the dependency lists change, so `make run` and
# `make test` stay fast and work offline once installed.
PY_STAMP := $(VENV)/.installed
NPM_STAMP := node_modules/.installed

HOST ?= 127.0.0.1
PORT ?= 5000
PYTEST_ARGS ?=

# Make hands environment and command-line variables to recipes, but say it
# explicitly for the test database so `make test TEST_DATABASE_URL=...` works too.
# Exported only when set: an empty TEST_DATABASE_URL would look like "use PostgreSQL".
ifdef TEST_DATABASE_URL
export TEST_DATABASE_URL
endif

.PHONY: help venv run test lint db-upgrade seed clean

help: ## list the targets
	@echo "Kinship make targets:"
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-11s %s\n", $$1, $$2}' $(MAKEFILE_LIST)
	@echo "Variables: HOST=$(HOST) PORT=$(PORT) PYTEST_ARGS='...' TEST_DATABASE_URL=postgresql://..."

# ---------------------------------------------------------------------------
# Environment

venv: $(PY_STAMP) ## create .venv and install Python (and npm) dependencies when they changed

# npm is optional: package.json may not exist yet, and a checkout without it must still work.
ifneq ($(wildcard package.json),)
venv: $(NPM_STAMP)
endif

# Order-only on the interpreter: re-creating nothing just because the python binary's
# mtime is newer than the stamp.
$(PY_STAMP): requirements.txt requirements-dev.txt | $(VENV_PY)
	$(VENV_PY) -m pip install --disable-pip-version-check -r requirements-dev.txt
	touch $@

$(VENV_PY):
	$(PYTHON) -m venv $(VENV)

# `npm ci` when a lock file exists (exact, reproducible); `npm install` otherwise (it
# writes the lock). The stamp lives inside node_modules because `npm ci` deletes that
# folder first, so a half-finished install never leaves a stale stamp behind.
$(NPM_STAMP): $(wildcard package.json package-lock.json)
	if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi
	mkdir -p node_modules
	touch $@

# ---------------------------------------------------------------------------
# Running

run: venv ## migrate, seed the demo study, start web + scheduler (Ctrl-C stops both)
	HOST=$(HOST) PORT=$(PORT) bin/run-dev

db-upgrade: venv ## apply database migrations (flask db upgrade)
	$(FLASK) db upgrade

seed: venv ## load the module library and seed the demo study if the database has none
	$(FLASK) modules sync
	KINSHIP_DEMO=1 $(FLASK) demo seed

# ---------------------------------------------------------------------------
# Checks

# PYTEST_RC_FILE (optional) receives pytest's own exit code: make itself always exits 2
# on failure, and .ci/run needs to tell "no tests ran" (5) from a failing test (1).
test: venv ## run the test suite (PYTEST_ARGS='-x -k name'; TEST_DATABASE_URL for PostgreSQL)
	@rc=0; $(VENV_PY) -m pytest $(PYTEST_ARGS) || rc=$$?; \
	if [ -n "$${PYTEST_RC_FILE:-}" ]; then echo $$rc > "$$PYTEST_RC_FILE"; fi; \
	if [ $$rc -eq 5 ]; then echo "make test: no tests ran (pytest exit code 5)" >&2; fi; \
	exit $$rc

lint: venv ## ruff check .
	$(VENV)/bin/ruff check .

# ---------------------------------------------------------------------------

clean: ## remove .venv, the SQLite databases in instance/ and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache .coverage
	rm -f instance/*.sqlite3*
	find . \( -path ./node_modules -o -path ./.git \) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +
