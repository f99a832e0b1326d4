"""Integration: dvc.yaml runs the real pipeline (smoke budget, real SmolLM2) in a fresh git clone.

The session's smoke run, after test_adopt made its cells DVC's (dvc.lock committed). Tests run in
file order on that repository: the experiment tables DVC made, a no-op repro, Snakemake/DVC
agreement, derived code dependencies, `dvc exp run -S lr=...` (the suite's DVC training run), and
a push/pull round trip (last: it deletes and restores every output).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml

from conftest import (
    SMOKE_REPORT,
    edited,
    ok,
    probe_modules,
    ran_stages,
    run_tool,
    shell_commands,
    stages_importing,
)
from locus import layout
from locus.params import load

NEW_LR = "0.0005"  # in no grid: `dvc exp run` trains its cells, Snakemake's grid never sees them


@pytest.fixture(scope="module")
def repo(smoke_run) -> Path:
    """A fresh `git clone` of the repository, as a user gets it (no `dvc init`: .dvc/ is committed),
    with the working tree's pipeline files on top so uncommitted edits are what is tested."""
    assert (smoke_run / ".dvc" / "config").is_file() and "__pycache__" in (smoke_run / ".dvcignore").read_text()
    ok(run_tool(smoke_run, "dvc", "repro"))  # test_adopt left nothing to do; alone, this runs everything
    ok(run_tool(smoke_run, "git", "add", "-A"))
    ok(run_tool(smoke_run, "git", "commit", "-qm", "baseline experiment", "--allow-empty"))
    return smoke_run


@pytest.fixture(scope="module")
def params(repo) -> dict:
    """The baseline's params.yaml (the smoke preset's values)."""
    return yaml.safe_load((repo / "params.yaml").read_text())


def test_repro_outputs(repo, params):
    domains = params["grid"]["domains"]
    summary = json.loads((repo / "results/smoke/experiment/summary.json").read_text())
    assert sorted(summary) == sorted(domains)
    assert all(v["eval_loss_after"] > 0 for v in summary.values())
    header = (repo / "results/smoke/experiment/layer_profile.csv").read_text().splitlines()[0]
    assert header.split(",") == ["layer", *sorted(domains)]
    assert (repo / "results/smoke/experiment/report.html").stat().st_size > 100_000


def test_second_repro_does_nothing(repo):
    out = ok(run_tool(repo, "dvc", "repro"))
    assert ran_stages(out) == [] and "up to date" in out


def test_snakemake_and_dvc_run_the_same_commands(repo, params):
    """Per-cell commands are identical; the two tools differ only in where the grid is aggregated
    (and DVC runs the cells of one LR, params' `lr`, where Snakemake runs every grid LR)."""
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    dvc_cmds = {" ".join(s["cmd"].split()) for name, s in lock.items() if not name.startswith(("aggregate", "report"))}
    dry = ok(run_tool(repo, "snakemake", "-n", "-p", "--forceall", "--cores", "1", "--", SMOKE_REPORT))
    smk_cmds = shell_commands(dry)
    other_lrs = [f"lr={lr}/" for lr in params["grid"]["learning_rates"] if lr != params["lr"]]
    smk_cells = {
        c
        for c in smk_cmds
        if not c.startswith(("locus aggregate", "locus report")) and not any(lr in c for lr in other_lrs)
    }
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


def test_exp_run_with_another_lr(repo):
    out = ok(run_tool(repo, "dvc", "exp", "run", "-S", "lr=1e-3"))
    assert not [s for s in ran_stages(out) if s.startswith("train@")]  # 1e-3 == 0.001: nothing to recompute
    ran = ran_stages(ok(run_tool(repo, "dvc", "exp", "run", "-S", f"lr={NEW_LR}")))
    assert "train@physics-0" in ran and not [s for s in ran if s.startswith("prepare")], ran
    assert (repo / f"results/smoke/runs/physics/lora/lr={NEW_LR}/seed=0/adapter_final").is_dir()
    shown = json.loads(ok(run_tool(repo, "dvc", "exp", "show", "--json")))
    lrs, summaries = set(), 0
    for baseline in shown:
        for rev in [baseline] + [r for e in baseline.get("experiments") or [] for r in e["revs"]]:
            data = rev["data"]
            lrs.add(data["params"]["params.yaml"]["data"]["lr"])
            summaries += "results/smoke/experiment/summary.json" in (data.get("metrics") or {})
    assert {0.001, float(NEW_LR)} <= lrs and summaries >= 2
    assert NEW_LR in ok(run_tool(repo, "dvc", "params", "diff"))
    assert "eval_loss_after" in ok(run_tool(repo, "dvc", "metrics", "diff"))
    plots = json.loads(ok(run_tool(repo, "dvc", "plots", "diff", "--json")))
    assert any("layer_profile.csv" in key for key in json.dumps(plots).split('"'))
    # The experiment's cells are outside Snakemake's grid: it still has nothing to do ...
    snakemake = ["snakemake", "-n", "--cores", "2", "--", SMOKE_REPORT]
    assert "Nothing to be done" in ok(run_tool(repo, *snakemake))
    # ... and after going back to the baseline (`dvc checkout` may re-create directories in any
    # order), `locus adopt --from dvc` re-stamps them so that it still has nothing to do.
    ok(run_tool(repo, "git", "checkout", "--", "params.yaml", "dvc.lock"))
    ok(run_tool(repo, "dvc", "checkout"))
    assert "re-stamped" in ok(run_tool(repo, "locus", "adopt", "--from", "dvc"))
    assert "Nothing to be done" in ok(run_tool(repo, *snakemake))


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_push_delete_pull_round_trip(repo, tmp_path):
    with contextlib.chdir(repo):
        p = load("params.yaml")
    # DVC's cells are those at params' `lr` (the grid has others); their seeds' initial adapters
    tracked = [
        repo / layout.cell_dir(p, domain, p.lr, seed) / "adapter_final/adapter_model.safetensors"
        for domain in p.grid.domains
        for seed in p.grid.seeds
    ]
    tracked += [repo / layout.init_dir(p, seed) / "adapter_model.safetensors" for seed in p.grid.seeds]
    tracked += sorted((repo / layout.model_dir(p)).glob("*.safetensors"))
    tracked += [repo / layout.pattern("w0_file", p), repo / layout.pattern("experiment_dir", p) / "layers.parquet"]
    assert all(path.is_file() for path in tracked), [path for path in tracked if not path.is_file()]
    before = {p: digest(p) for p in tracked}
    ok(run_tool(repo, "dvc", "remote", "add", "-d", "local", str(tmp_path / "remote")))
    ok(run_tool(repo, "dvc", "push"))
    shutil.rmtree(repo / ".dvc" / "cache")
    shutil.rmtree(repo / "results")
    shutil.rmtree(repo / "models")
    ok(run_tool(repo, "dvc", "pull"))
    assert {p: digest(p) for p in tracked} == before
