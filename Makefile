# The two commands of the README: `make run` and `make test`. Both create .venv on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: run test test-faults soak bench lint system-deps clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[test,bench,dashboards]'
	@rm -f $(VENV)/.installed-*; touch $(STAMP)

## run: local Kafka + worker + synthetic traffic, alerts in the terminal (Ctrl-C stops all)
run: $(STAMP)
	@bash deploy/local/system-deps.sh run
	$(PY) -m streams.cli local

## test: lint and the whole suite, real-Kafka tests included
test: $(STAMP) system-deps
	$(PY) -m ruff check .
	$(PY) -m pytest -m "not faults"

## test-faults: kill -9, rebalance, broker restart, SIGTERM, hostile input, every alert kind (real Kafka, ~6 min)
test-faults: $(STAMP) system-deps
	$(PY) -m pytest -m faults -s tests/faults

## soak: randomized faults against live traffic, then every alert and score checked against
## the offline replay (SOAK_MINUTES, default 10; SOAK_SEED repeats a run; docs/delivery.md#soak)
soak: $(STAMP) system-deps
	$(PY) -m tests.soak.soak

## bench: the benchmark of docs/performance.md (1M events; minutes, not part of `make test`):
## the domain alone on one core first, then the three contestants on real Kafka
bench: $(STAMP)
	@bash deploy/local/system-deps.sh run
	$(PY) bench/domain.py
	$(PY) bench/run.py $(BENCH_ARGS)

lint: $(STAMP)
	$(PY) -m ruff check .

system-deps:
	@bash deploy/local/system-deps.sh

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis .mot-data
