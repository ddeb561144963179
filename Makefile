# Two commands for a new user: `make demo` and `make test`. Both create .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when the project's metadata changes (idempotent).
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,dask]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/nnlab run experiments/quick.toml
	$(BIN)/nnlab summary results/quick
	$(BIN)/nnlab figures results/quick

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,dask,bench]"
	$(BIN)/python scripts/bench_engine.py --check
	$(BIN)/python scripts/bench_engine.py --repeats 2 --markdown

clean:
	rm -rf $(VENV)
