# Every target that runs code depends on `install`, so a fresh clone needs only `make train` / `make test`.
SHELL  := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
PYTEST_ARGS ?=
QUICK  ?=

.PHONY: install train test test-all lint format clean results results-run

# Re-installs only when pyproject.toml changes, so repeated `make` calls cost nothing.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e ".[dev]" 2>&1 \
		| { grep -v "^WARNING: Location 'file:" || true; }
	$(BIN)/python -c "import vidgen, torch, lightning, hydra" # fail here, not mid-run, on a broken install
	touch $(STAMP)

install: $(STAMP)

train: install
	$(BIN)/vidgen-train $(ARGS)

test: install
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

test-all: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# docs/RESULTS.md from the runs in logs/ (one row per experiment; see src/vidgen/cli/results.py)
results: install
	$(BIN)/python -m vidgen.cli.results

# Runs every experiment's `# CPU budget` command (EXPERIMENTS="a b" for some), evaluates it, then `results`.
results-run: install
	$(BIN)/python -m vidgen.cli.results run $(EXPERIMENTS)

lint: install
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

format: install
	$(BIN)/ruff format src tests benchmarks
	$(BIN)/ruff check --fix src tests benchmarks

.PHONY: bench
# vidgen vs a hand-written loop and this machine's peak; QUICK=1: fewer steps, no torch.compile.
# Writes benchmarks/results/latest.json and latest.md (see docs/PERFORMANCE.md).
bench: install
	$(BIN)/python benchmarks/bench.py $(if $(QUICK),--quick)

clean:
	rm -rf logs .pytest_cache .ruff_cache
