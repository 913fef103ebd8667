# Two commands do everything on a fresh clone: `make test` and `make demo`.
# The venv, pip cache and Maven/Kafka cache live in git-ignored folders.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_CACHE_DIR := $(CURDIR)/.cache/pip
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: help install lint typecheck unit test demo up down status worker bridges clean

help:
	@echo "make test    - install, lint, type-check, run every test (brings the local stack up)"
	@echo "make demo    - bring the stack up and run the simulated city (~100 complaints)"
	@echo "make up | down | status - the local stack (Temporal, Kafka, PostgreSQL)"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -q -m "not stack"

test: $(STAMP) lint typecheck
	$(BIN)/hotline stack up
	$(BIN)/pytest -q

demo: $(STAMP)
	$(BIN)/hotline demo

up: $(STAMP)
	$(BIN)/hotline stack up

down: $(STAMP)
	$(BIN)/hotline stack down

status: $(STAMP)
	$(BIN)/hotline stack status

clean: down
	rm -rf .state
