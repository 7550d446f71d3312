SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# Tests that mostly wait on servers (gunicorn, Chromium, leases): run beside the rest.
SERVER_TESTS := tests/integration tests/e2e
# Each run lists its slowest tests, so a CI log shows where the time went.
PYTEST = $(BIN)/pytest -q -p no:cacheprovider --durations=10

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
FLASK := $(BIN)/flask --app app
# The port `make run` serves on: `make run PORT=5001` beside another checkout's server.
PORT ?= 5000
# Root on these machines; sudo elsewhere.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: help setup system run test lint typecheck bench load stop clean

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "} {printf "  %-9s %s\n", $$1, $$2}'

setup: $(VENV)/.stamp node_modules/.stamp ## Install everything (idempotent; fast when nothing changed)

# Checked on every run (cheap) so a machine that lost a package gets it back; apt-get update
# runs only when something is missing. No Recommends: chromium's pull in avahi, samba, cups.
system:
	@pkgs=""; \
	[ -x /usr/bin/chromium ] || pkgs="$$pkgs chromium fonts-liberation"; \
	command -v java >/dev/null || pkgs="$$pkgs openjdk-17-jre-headless"; \
	command -v npm >/dev/null || pkgs="$$pkgs npm"; \
	[ -x $(BIN)/python ] || $(PYTHON) -c 'import ensurepip' 2>/dev/null || pkgs="$$pkgs python3-venv"; \
	if [ -n "$$pkgs" ]; then \
		echo "==> apt-get install$$pkgs"; \
		$(SUDO) mkdir -p /usr/share/man/man1; \
		aptlog=$$(mktemp); \
		if ! { $(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive \
				apt-get install -y -qq --no-install-recommends $$pkgs; } >"$$aptlog" 2>&1; then \
			tail -n 40 "$$aptlog"; rm -f "$$aptlog"; exit 1; \
		fi; \
		rm -f "$$aptlog"; \
	fi

$(VENV)/.stamp: requirements.txt requirements-dev.txt | system
	@[ -x $(BIN)/python ] || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check -r requirements-dev.txt
	@touch $@

# --ignore-scripts: we only need the files (the jar); nothing of the package runs at install.
node_modules/.stamp: package.json package-lock.json | system
	npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	@touch $@

run: setup ## Run the dev server on http://127.0.0.1:5000 (PORT=...) with demo data; Ctrl-C stops it all
	@# No SECRET_KEY: in development the app makes instance/secret_key once (app.py).
	@# The embedded database runs detached (every local process shares it), so the shell
	@# stops it on the way out (Ctrl-C, a closed terminal, kill): only if this command
	@# started it, so a second `make run` beside the first leaves the first one's alone.
	@export APP_ENV=development; \
	if [ "$$($(BIN)/python -m devtools.embedded_db start instance)" = started ]; then \
		trap '$(BIN)/python -m devtools.embedded_db stop instance >/dev/null || true' EXIT; \
	fi; \
	trap 'exit 130' INT; trap 'exit 143' TERM; trap 'exit 129' HUP; \
	$(FLASK) db init; \
	$(FLASK) legacy seed --if-empty --items 120 --settings 5 --members 4; \
	$(FLASK) run --port $(PORT)

test: setup ## Lint, then the tests on moto and on DynamoDB Local (side by side)
	@echo "==> lint"
	@$(MAKE) --no-print-directory lint
	@# Three runs side by side: moto (the whole suite), and DynamoDB Local in two halves: the
	@# tests that wait on servers (gunicorn, Chromium, leases) and the rest. Waiting runs fill
	@# each other's idle time on 2 cores. The background runs write to files, printed whole
	@# once all are done.
	@mkdir -p test-results
	@rm -f test-results/iam-local-*.json
	@echo "==> pytest --backend=moto and --backend=local (servers half) beside, into test-results/"
	@echo "==> pytest --backend=local (the rest)"
	@$(PYTEST) --backend=moto > test-results/moto.log 2>&1 & moto=$$!; \
	$(PYTEST) --backend=local --iam-record=test-results/iam-local-servers.json $(SERVER_TESTS) \
		> test-results/local-servers.log 2>&1 & servers=$$!; \
	local=0; $(PYTEST) --backend=local --iam-record=test-results/iam-local-rest.json \
		$(addprefix --ignore=,$(SERVER_TESTS)) || local=$$?; \
	servers_status=0; wait $$servers || servers_status=$$?; \
	moto_status=0; wait $$moto || moto_status=$$?; \
	echo "==> pytest --backend=local $(SERVER_TESTS)"; cat test-results/local-servers.log; \
	echo "==> pytest --backend=moto"; cat test-results/moto.log; \
	[ $$local -eq 0 ] || echo "==> the DynamoDB Local run failed (exit $$local): see above" >&2; \
	[ $$moto_status -eq 0 ] && [ $$local -eq 0 ] && [ $$servers_status -eq 0 ]
	@# Each DynamoDB Local half checks every call was granted; together they ran the whole
	@# suite, so their union must also use every grant (moto's single run checks itself).
	@echo "==> IAM policies over both DynamoDB Local runs"
	@$(BIN)/python -m tests.support.iam_recorder union test-results/iam-local-*.json

lint: $(VENV)/.stamp ## ruff, cfn-lint and the IAM policy check over deploy/, then mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/cfn-lint deploy/*.yaml
	$(BIN)/python -m devtools.iam_policy deploy/iam/*.json
	@$(MAKE) --no-print-directory typecheck

typecheck: $(VENV)/.stamp ## mypy over store/ and web/ (settings in pyproject.toml)
	$(BIN)/mypy

bench: setup ## Run the benchmarks (python -m bench)
	$(BIN)/python -m bench

load: setup ## Load test: Locust drives gunicorn on DynamoDB Local for ~60 s, prints a table
	$(BIN)/python -m load.run

stop: ## Stop the embedded database (one left by an interrupted `make run`, say)
	@if [ -x $(BIN)/python ]; then $(BIN)/python -m devtools.embedded_db stop instance; fi

clean: stop ## Remove caches and test/bench output (keeps .venv, node_modules, instance/)
	find . -path ./.venv -prune -o -path ./node_modules -prune -o \
		-name __pycache__ -type d -exec rm -rf {} +
	rm -rf .pytest_cache .ruff_cache .hypothesis test-results bench-results
