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

.PHONY: help install db-start db-stop db-status seed demo transform test test-fast lint export backup bench bench-quick bench-export profile

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

demo: ## Install, start Neo4j, seed a legacy graph, export, transform, load, validate, diff, report
	$(MAKE) seed
	$(MAKE) export
	$(MAKE) transform
	$(MAKE) diff
	$(MAKE) load
	$(MAKE) report

export: install ## Export the legacy graph into data/export (Parquet, checksummed)
	$(ETL) export --out $(EXPORT_DIR)

backup: install ## Back up every label and type into backups/<timestamp>/
	$(ETL) backup

transform: install ## Migrate data/export into data/transform (Workflow → WorkflowRun)
	$(ETL) transform --in $(EXPORT_DIR) --out $(TRANSFORM_DIR)

test: install ## Run the test suite against a real Neo4j (started by the tests)
	$(BIN)/pytest -q

test-faults: install ## The whole fault suite (crashes, tampering, 500 hostile graphs …); rewrites RELIABILITY.md
	ETL_FAULTS=full $(BIN)/pytest -q tests/faults

test-fast: install ## Only the tests that need no database
	$(BIN)/pytest -q -m "not db"

lint: install ## ruff format --check, ruff check, mypy --strict
	$(BIN)/ruff format --check etl tests
	$(BIN)/ruff check etl tests
	$(BIN)/mypy

BENCH_SIZES ?= 100000,400000

bench: install ## The whole pipeline vs the original in-place APOC migration and the naive ways (BENCH_SIZES)
	$(BIN)/python bench/bench_all.py --sizes $(BENCH_SIZES) --command "make bench BENCH_SIZES=$(BENCH_SIZES)"

bench-quick: install ## Smoke run of `make bench` at 10k workflows, one run per step
	$(BIN)/python bench/bench_all.py --sizes 10000 --runs 1 --command "make bench-quick"

PROFILE_WORKFLOWS ?= 20000

profile: install ## py-spy profile of export, transform, load, validate (PROFILE_WORKFLOWS=20000; own server)
	$(BIN)/python bench/profile.py --workflows $(PROFILE_WORKFLOWS) --command "make profile PROFILE_WORKFLOWS=$(PROFILE_WORKFLOWS)"

bench-export: install ## Export benchmark vs a naive baseline (WORKFLOWS=100000, dev server; wipes it)
	$(BIN)/python bench/bench_export.py --workflows $(or $(BENCH_WORKFLOWS),100000)

# load / validate / bench-load: ledger and report.json go to $(LOAD_DIR) (default data/load).
.PHONY: load load-offline restore validate bench-load test-faults

load: install ## Load data/transform (in place, or replayed into an empty db), then validate
	$(ETL) load --in $(TRANSFORM_DIR) --ledger-dir $(or $(LOAD_DIR),data/load)

load-offline: install ## neo4j-admin import of data/transform into a fresh local database (REPLACE=1 to overwrite one)
	$(ETL) load --mode offline $(if $(REPLACE),--replace) --in $(TRANSFORM_DIR) --ledger-dir $(or $(LOAD_DIR),data/load)

restore: install ## Restore BACKUP=backups/<stamp> into the local database (REPLACES it), then prove it
	@test -n "$(BACKUP)" || { echo "usage: make restore BACKUP=backups/<stamp> [MODE=offline]"; exit 2; }
	$(ETL) restore $(BACKUP) --replace --mode $(or $(MODE),online)

validate: install ## Check the migration's five invariants in the database (exit 3 if one fails)
	$(ETL) validate --in $(TRANSFORM_DIR)

bench-load: install ## Load benchmark vs row-at-a-time (WORKFLOWS=100000, dev server; WIPES it)
	$(BIN)/python bench/bench_load.py --workflows $(or $(BENCH_WORKFLOWS),100000)

# diff / report: outputs go under data/ (git-ignored).
.PHONY: diff report report-check
LOAD_DIR ?= data/load
REPORT_HTML ?= data/report.html
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

diff: install ## Diff data/export vs data/transform and explain the migration (exit 1 = differences, expected)
	$(ETL) diff $(EXPORT_DIR) $(TRANSFORM_DIR) --migration workflow-to-workflowrun || test $$? -eq 1

report: install ## Write data/report.html (counts, runs, rejections, load rates, diff; self-contained)
	$(ETL) report --export $(EXPORT_DIR) --transform $(TRANSFORM_DIR) --load $(LOAD_DIR) --out $(REPORT_HTML)

report-check: install ## Render the report in headless Chromium (apt-installs it if missing) → data/report.png
	@test -x /usr/bin/chromium || { echo "Installing Debian chromium…"; \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium; }
	$(ETL) report --export $(EXPORT_DIR) --transform $(TRANSFORM_DIR) --load $(LOAD_DIR) \
		--out $(REPORT_HTML) --screenshot $(REPORT_HTML:.html=.png)
	$(BIN)/pytest -q -p no:cacheprovider tests/test_report.py -k "chromium or browser"

# test-compat: the pipeline on each Neo4j version our users run (README "Configuration").
.PHONY: test-compat
COMPAT_VERSIONS ?= 5.26.3 5.26.30 2026.08.1
COMPAT_REPORT ?= data/compat/report.json

$(VENV)/.java21: $(STAMP)
	$(BIN)/pip install -q -e '.[dev,java21]'
	touch $@

test-compat: install $(VENV)/.java21 ## Seed, pipeline, online/offline round trips and restore on each of COMPAT_VERSIONS
	@rm -f $(COMPAT_REPORT)
	ETL_COMPAT_VERSIONS="$(COMPAT_VERSIONS)" ETL_COMPAT_REPORT=$(COMPAT_REPORT) $(BIN)/pytest -q -p no:cacheprovider tests/test_compat.py
	@cat $(COMPAT_REPORT)
