# Run `make help` for the list of targets. Configuration: README.md ("Configuration").
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
ETL    := $(BIN)/etl
STAMP  := $(VENV)/.installed
WORKFLOWS ?= 2000
EXPORT_DIR ?= data/export
TRANSFORM_DIR ?= data/transform

.PHONY: help install db-start db-stop db-status seed demo transform test test-fast lint

help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the tool with its dev dependencies

db-start: install ## Fetch Neo4j jars (first time) and start the local server
	$(ETL) db start

db-stop: install ## Stop the local server
	$(ETL) db stop

db-status: install ## Show the local server's version, URI, PID and password
	$(ETL) db status

seed: db-start ## Seed a sample legacy graph (WORKFLOWS=2000, wipes the local database first)
	$(ETL) seed --workflows $(WORKFLOWS) --dirty 0.1 --replace

demo: ## Install, start Neo4j, seed a legacy graph, run every stage end to end
	$(MAKE) seed

transform: install ## Migrate data/export into data/transform (Workflow → WorkflowRun)
	$(ETL) transform --in $(EXPORT_DIR) --out $(TRANSFORM_DIR)

test: install ## Run the test suite against a real Neo4j (started by the tests)
	$(BIN)/pytest -q

test-fast: install ## Only the tests that need no database
	$(BIN)/pytest -q -m "not db"

lint: install ## ruff format --check, ruff check, mypy --strict
	$(BIN)/ruff format --check etl tests
	$(BIN)/ruff check etl tests
	$(BIN)/mypy
