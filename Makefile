# Locus — the commands users type. Everything installs itself into .venv on first use.
#   make report   default grid -> results/report.html
#   make smoke    small preset, same layout -> results/smoke/report.html (a few minutes on CPU)
#   make test     the test suite (unit + integration on the smoke preset)
#   make test-unit  the quick loop: tests/unit only (tiny random models, a few minutes)
#   make lint     ruff (lint + format check) and the import-layer contracts
#   make cluster-test  the pipeline through a real single-node SLURM cluster (root; installs SLURM)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= $(shell nproc)  # model jobs take every core (rules declare threads)
TEST_WORKERS ?= 2         # pytest-xdist workers for `make test`
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install report smoke test test-unit lint wiring cluster-test clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check --no-compile -r requirements.txt
	@# Byte-compile on every core (pip does it on one: ≈25 s more, docs/performance.md). Ignored exit
	@# code: a few files shipped for newer Pythons do not compile, as under pip, which skips them too.
	$(BIN)/python -m compileall -qq -j 0 $(VENV)/lib >/dev/null || true
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(STAMP)

report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) results/report.html

smoke: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --config preset=smoke -- results/smoke/report.html

test: $(STAMP)  # two workers: pipeline runs wait on imports, SLURM and disk; tests/conftest.py schedules them and gives each its share of the cores
	$(BIN)/python -m pytest -ra -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder --durations=15

test-unit: $(STAMP)
	$(BIN)/python -m pytest -ra -n $(TEST_WORKERS) tests/unit

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/lint-imports

wiring: $(STAMP)  # regenerate dvc.yaml after changing a stage or an import under src/locus
	$(BIN)/locus wiring

cluster-test: $(STAMP)
	$(BIN)/python -m pytest -ra tests/cluster

clean:
	rm -rf results .snakemake
