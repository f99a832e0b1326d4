# Locus — the commands users type. Everything installs itself into .venv on first use.
#   make report   default grid -> results/report.html
#   make smoke    small preset, same layout -> results/smoke/report.html (a few minutes on CPU)
#   make test     the test suite (unit + integration on the smoke preset)
#   make cluster-test  the pipeline through a real single-node SLURM cluster (root; installs SLURM)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
CORES  ?= $(shell nproc)  # model jobs take every core (rules declare threads)
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: install report smoke test test-unit cluster-test clean

$(STAMP): requirements.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $@

install: $(STAMP)

report: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) results/report.html

smoke: $(STAMP)
	$(BIN)/snakemake --cores $(CORES) --config preset=smoke -- results/smoke/report.html

test: $(STAMP)
	$(BIN)/python -m pytest -ra

test-unit: $(STAMP)
	$(BIN)/python -m pytest -ra -m "not integration"

cluster-test: $(STAMP)
	$(BIN)/python -m pytest -ra -m cluster tests/cluster

clean:
	rm -rf results .snakemake
