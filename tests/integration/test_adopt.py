"""Integration: Snakemake and DVC in one workspace adopt each other's finished cells.

The session's smoke run (conftest.smoke_run: a fresh clone, the smoke preset in params.yaml, the
grid run by Snakemake): `locus adopt` records it in dvc.lock, and from then on neither tool redoes
the other's work; a real change (one domain's raw file) makes both plan exactly that domain's cells
and what follows. Tests run in file order, after test_pipeline and before test_dvc.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from conftest import SMOKE_REPORT, ok, ran_stages, run_tool, shell_commands, snakemake_reasons

TARGET = ["--", SMOKE_REPORT]
GRID_LEVEL = ("aggregate", "report")  # stages that read every cell


def snakemake(root: Path, *args: str) -> str:
    return ok(run_tool(root, "snakemake", "--cores", "2", *args))


def test_snakemake_cells_are_adopted_by_dvc_without_running(smoke_run):
    out = ok(run_tool(smoke_run, "locus", "adopt"))
    stages = ok(run_tool(smoke_run, "dvc", "stage", "list", "--name-only")).split()
    per_cell = [s for s in stages if not s.startswith(GRID_LEVEL)]
    assert f"adopted {len(per_cell)} stages" in out, out
    status = json.loads(ok(run_tool(smoke_run, "dvc", "status", "--json")) or "{}")
    assert set(status) <= set(GRID_LEVEL), status  # DVC's experiment tables were never made by Snakemake
    ran = ran_stages(ok(run_tool(smoke_run, "dvc", "repro")))
    assert set(ran) == set(GRID_LEVEL), ran  # no training, no preparing: only the experiment's tables
    ok(run_tool(smoke_run, "git", "add", "dvc.lock"))
    ok(run_tool(smoke_run, "git", "commit", "-qm", "the grid, adopted from Snakemake"))


def test_dvc_leaves_snakemake_with_nothing_to_do(smoke_run):
    assert "Nothing to be done" in snakemake(smoke_run, "-n", *TARGET)


def test_a_raw_data_change_reruns_exactly_that_domain_in_both_tools(smoke_run):
    raw = smoke_run / "data/raw/physics.jsonl"
    original, stat = raw.read_bytes(), raw.stat()
    raw.write_bytes(
        original + b'{"instruction": "A ball falls for 2 s from rest. How far?", '
        b'"response": "d = g t^2 / 2 = 19.6 m. Answer: 19.6 m"}\n'
    )
    try:
        dry = snakemake(smoke_run, "-n", "-p", *TARGET)
        assert snakemake_reasons(dry)["updated input files"] == {"prepare_data"}
        per_cell = [c for c in shell_commands(dry) if not c.startswith(("locus aggregate", "locus report"))]
        # Other domains' cells are not retrained; only their evaluation reruns, which scores them on
        # physics' (changed) eval split too.
        others = [c for c in per_cell if "physics" not in c]
        assert per_cell and others and all(c.startswith("locus evaluate --method") for c in others), per_cell
        status = json.loads(ok(run_tool(smoke_run, "dvc", "status", "--json")))
        assert set(status) == {"prepare_data@physics"}, status
    finally:
        raw.write_bytes(original)
        os.utime(raw, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.cpu_only("CPU reruns are bit-identical; CUDA only with training.deterministic")
def test_an_adopted_cell_is_byte_identical_to_dvc_training_it(smoke_run):
    cell = smoke_run / "results/smoke/runs/physics/lora/lr=0.001/seed=0"
    adapter = cell / "adapter_final" / "adapter_model.safetensors"
    by_snakemake = adapter.read_bytes()
    threads = json.loads((cell / "metrics.json").read_text())["threads"]  # bit-identical needs the same count
    out = ok(
        run_tool(
            smoke_run,
            "dvc",
            "repro",
            "--force",
            "--single-item",
            "train@physics-0",
            env={"OMP_NUM_THREADS": str(threads)},
        )
    )
    assert ran_stages(out) == ["train@physics-0"]
    assert adapter.read_bytes() == by_snakemake


def test_cells_made_with_other_params_values_are_refused(smoke_run):
    """params.yaml edited after the Snakemake run: its cells are not what DVC would make now."""
    params = smoke_run / "params.yaml"
    original = params.read_text()
    params.write_text(original.replace("max_seq_length:", "max_seq_length: 200 #", 1))
    try:
        out = ok(run_tool(smoke_run, "locus", "adopt", "--dry-run"))
    finally:
        params.write_text(original)
    assert re.search(r"not adopted: train@physics-0: Snakemake made it with other values", out), out
    assert "not adopted: init_adapter" not in out  # it does not read the training section
