# Two commands do everything on a fresh clone: `make test` and `make demo`.
# The venv, pip cache and Maven/Kafka cache live in git-ignored folders.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

LOCK_ARGS := --python-version 3.11 --python-platform x86_64-manylinux_2_28 --generate-hashes \
	--custom-compile-command "make lock" -q
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo)

.PHONY: lock screenshots help install lint typecheck unit test reliability demo up down status worker bridges clean \
	prometheus-tools deploy-tools browser-tools bench

help:
	@echo "make test    - install, lint, type-check, run every test (brings the local stack up)"
	@echo "make demo    - bring the stack up and run the simulated city (~100 complaints)"
	@echo "make bench   - end-to-end benchmark against a bare workflow + codec (~6 min);"
	@echo "               long modes: make bench BENCH_ARGS='--duration 600 --rate 5'"
	@echo "               or BENCH_ARGS='--rounds 0 --duration 0 --open-cases 100000 --open-rate 5 --time-scale 0.001'"
	@echo "make reliability - the fault suite at full scale; prints the reliability table"
	@echo "make up | down | status - the local stack (Temporal, Kafka, PostgreSQL)"

# Installs are reproducible: exact versions and hashes from requirements/dev.lock (the
# runtime, the test tools and the local servers); the project itself goes in without
# dependencies. The production image installs requirements/runtime.lock only.
$(STAMP): pyproject.toml requirements/dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q --require-hashes -r requirements/dev.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

# Regenerate both locks after changing dependencies in pyproject.toml (uv, from the dev
# lock); tests/test_lock.py fails while they are out of step.
lock: $(STAMP)
	UV_NATIVE_TLS=1 $(BIN)/uv pip compile pyproject.toml $(LOCK_ARGS) \
	  -o requirements/runtime.lock
	UV_NATIVE_TLS=1 $(BIN)/uv pip compile pyproject.toml $(LOCK_ARGS) --extra local --extra dev \
	  -o requirements/dev.lock

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -m "not stack and not reliability"

# promtool (alert rule unit tests) and prometheus (scrape test): Debian's package.
prometheus-tools:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus; }

# kubectl renders deploy/k8s offline (kustomize v5: kubectl >= 1.27); openssl makes the
# TLS test's certificates.
deploy-tools:
	@command -v kubectl >/dev/null || { echo "kubectl >= 1.27 is needed to render deploy/k8s"; exit 1; }
	@command -v openssl >/dev/null || { $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends openssl; }

# The workbench's browser tests (tests/workbench/test_browser.py): Debian's headless
# Chromium, driven by Playwright (never `playwright install`), and a CJK font for its pages.
browser-tools:
	@test -x /usr/bin/chromium && fc-list :lang=zh | grep -q . || { \
	  $(SUDO) apt-get update && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
	    chromium chromium-driver fonts-wqy-microhei; }

test: $(STAMP) lint typecheck prometheus-tools deploy-tools browser-tools
	$(BIN)/hotline stack up
	$(BIN)/pytest -q

# The README's workbench pictures, taken by the browser tests (docs/screenshots/).
screenshots: $(STAMP) browser-tools
	$(BIN)/hotline stack up
	HOTLINE_UPDATE_SCREENSHOTS=1 $(BIN)/pytest -q tests/workbench/test_browser.py

# The fault suite (tests/reliability): every fault at full scale, then the table
# (also written to .state/reliability.md). Takes about 1.5 hours on 2 cores.
# A fault at full scale runs longer than the 600 s the fast suite allows a test.
reliability: $(STAMP)
	$(BIN)/hotline stack up
	$(BIN)/pytest -q tests/reliability -m "reliability or reliability_quick" --timeout=5400

demo: $(STAMP)
	$(BIN)/hotline demo

# Figures, not pass/fail: see docs/performance.md. BENCH_ARGS passes flags to bench/e2e.py.
bench: $(STAMP)
	$(BIN)/hotline stack up
	$(BIN)/python -m bench.bench_codec --compare
	$(BIN)/python -m bench.bench_sandbox
	$(BIN)/python -m bench.bench_payloads
	$(BIN)/python -m bench.e2e $(BENCH_ARGS)

up: $(STAMP)
	$(BIN)/hotline stack up

down: $(STAMP)
	$(BIN)/hotline stack down

status: $(STAMP)
	$(BIN)/hotline stack status

clean: down
	rm -rf .state
