"""Integration: dvc.yaml runs the real pipeline (smoke budget, real SmolLM2) in a fresh git clone.

Tests run in file order on one repository: repro, no-op repro, Snakemake/DVC agreement, a data
change that re-runs one domain, `dvc exp run -S lr=...`, and a push/pull round trip.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import edited, ok, probe_modules, ran_stages, run_tool, shell_commands, smoke_clone, stages_importing

DOMAINS = ["physics", "math_linguistic"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A fresh `git clone` of the repository, as a user gets it (no `dvc init`: .dvc/ is committed),
    with the working tree's pipeline files on top so uncommitted edits are what is tested."""
    root = smoke_clone(tmp_path_factory.mktemp("dvc") / "clone", DOMAINS)
    assert (root / ".dvc" / "config").is_file() and "__pycache__" in (root / ".dvcignore").read_text()
    out = ok(run_tool(root, "dvc", "repro"))
    assert "train@physics-0" in ran_stages(out)
    ok(run_tool(root, "git", "add", "-A"))
    ok(run_tool(root, "git", "commit", "-qm", "baseline experiment"))
    return root


def test_repro_outputs(repo):
    summary = json.loads((repo / "results/smoke/experiment/summary.json").read_text())
    assert sorted(summary) == sorted(DOMAINS)
    assert all(v["eval_loss_after"] > 0 for v in summary.values())
    header = (repo / "results/smoke/experiment/layer_profile.csv").read_text().splitlines()[0]
    assert header.split(",") == ["layer", *sorted(DOMAINS)]
    assert (repo / "results/smoke/experiment/report.html").stat().st_size > 100_000


def test_second_repro_does_nothing(repo):
    out = ok(run_tool(repo, "dvc", "repro"))
    assert ran_stages(out) == [] and "up to date" in out


def test_snakemake_and_dvc_run_the_same_commands(repo):
    """Per-cell commands are identical; the two tools differ only in where the grid is aggregated."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    dvc_cmds = {" ".join(s["cmd"].split()) for name, s in lock.items() if not name.startswith(("aggregate", "report"))}
    dry = ok(run_tool(repo, "snakemake", "-n", "-p", "--forceall", "--cores", "1", "--", "results/smoke/report.html"))
    smk_cmds = shell_commands(dry)
    smk_cells = {c for c in smk_cmds if not c.startswith(("locus aggregate", "locus report"))}
    assert dvc_cmds and dvc_cmds == smk_cells
    assert {c.split()[1] for c in smk_cmds} == {s["cmd"].split()[1] for s in lock.values()}


def test_editing_a_module_makes_exactly_the_stages_importing_it_stale(repo):
    """Code dependencies are derived: editing a file a stage imports (even transitively) makes that
    stage stale in `dvc status`; a file no stage imports leaves everything up to date."""
    present = {line.split()[0].split("@")[0] for line in ok(run_tool(repo, "dvc", "stage", "list")).splitlines()}
    for module in probe_modules():
        with edited(repo / module):
            status = json.loads(ok(run_tool(repo, "dvc", "status", "--json")) or "{}")
        assert {name.split("@")[0] for name in status} == stages_importing(module) & present, module


def test_changing_one_domain_reruns_only_its_cells(repo):
    raw = repo / "data/raw/physics.jsonl"
    original = raw.read_bytes()
    raw.write_bytes(
        original + b'{"instruction": "A ball falls for 2 s from rest. How far?", '
        b'"response": "d = g t^2 / 2 = 19.6 m. Answer: 19.6 m"}\n'
    )
    try:
        stages = ran_stages(ok(run_tool(repo, "dvc", "repro")))
        assert "prepare_data@physics" in stages and "train@physics-0" in stages
        # math_linguistic's cell is not retrained; only its cross-domain evaluation re-runs, because
        # it scores that cell on physics' (changed) eval split too.
        assert not [s for s in stages if "math_linguistic" in s and not s.startswith("evaluate@")], stages
        assert "evaluate@math_linguistic-0" in stages
    finally:
        raw.write_bytes(original)
    ok(run_tool(repo, "dvc", "repro"))


def test_exp_run_with_another_lr(repo):
    out = ok(run_tool(repo, "dvc", "exp", "run", "-S", "lr=1e-3"))
    assert "train@physics-0" not in ran_stages(out)  # 1e-3 == 0.001: nothing to recompute
    ok(run_tool(repo, "dvc", "exp", "run", "-S", "lr=0.0002"))
    assert (repo / "results/smoke/runs/physics/lr=0.0002/seed=0/adapter_final").is_dir()
    shown = json.loads(ok(run_tool(repo, "dvc", "exp", "show", "--json")))
    lrs, summaries = set(), 0
    for baseline in shown:
        for rev in [baseline] + [r for e in baseline.get("experiments") or [] for r in e["revs"]]:
            data = rev["data"]
            lrs.add(data["params"]["params.yaml"]["data"]["lr"])
            summaries += "results/smoke/experiment/summary.json" in (data.get("metrics") or {})
    assert {0.001, 0.0002} <= lrs and summaries >= 2
    assert "0.0002" in ok(run_tool(repo, "dvc", "params", "diff"))
    assert "eval_loss_after" in ok(run_tool(repo, "dvc", "metrics", "diff"))
    plots = json.loads(ok(run_tool(repo, "dvc", "plots", "diff", "--json")))
    assert any("layer_profile.csv" in key for key in json.dumps(plots).split('"'))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_push_delete_pull_round_trip(repo, tmp_path):
    tracked = sorted((repo / "results/smoke/runs").glob("*/lr=*/seed=*/adapter_*/*.safetensors"))
    tracked += sorted((repo / "models/base").glob("*.safetensors")) + [repo / "results/smoke/experiment/layers.parquet"]
    assert len(tracked) >= 2 * len(DOMAINS) + 2
    before = {p: digest(p) for p in tracked}
    ok(run_tool(repo, "dvc", "remote", "add", "-d", "local", str(tmp_path / "remote")))
    ok(run_tool(repo, "dvc", "push"))
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "results")
    shutil.rmtree(repo / "models")
    ok(run_tool(repo, "dvc", "pull"))
    assert {p: digest(p) for p in tracked} == before
