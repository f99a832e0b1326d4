"""The pipeline is defined once (locus.pipeline + locus.layout): dvc.yaml is generated from it and
code dependencies are derived from imports."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO
from locus import code_deps, dvc_yaml, layout, pipeline
from locus.cli import STAGES as COMMANDS


def test_committed_dvc_yaml_is_what_the_table_generates():
    assert (REPO / "dvc.yaml").read_text(encoding="utf-8") == dvc_yaml.dvc_yaml(), "run `locus wiring`"


def test_wiring_check_names_the_stale_file(tmp_path):
    stale = tmp_path / "dvc.yaml"
    stale.write_text(dvc_yaml.dvc_yaml().replace("lora", "LORA"))
    run = subprocess.run(
        [sys.executable, "-m", "locus", "wiring", "--check", "--out", str(stale)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 1
    assert run.stderr.strip().splitlines() == [
        f"locus wiring: error: {stale}: out of date with src/locus/pipeline.py; run `locus wiring`"
    ]
    fresh = subprocess.run(
        [sys.executable, "-m", "locus", "wiring", "--out", str(stale)], cwd=REPO, capture_output=True, text=True
    )
    assert fresh.returncode == 0 and stale.read_text() == dvc_yaml.dvc_yaml()


def test_code_files_follow_transitive_imports():
    """The imports the hand-written lists used to miss are found."""
    effective = code_deps.code_files("effective")
    assert {
        "src/locus/stages/effective.py",
        "src/locus/cli.py",
        "src/locus/params/__init__.py",
        "src/locus/params/sections.py",
    } <= set(effective)
    for command in COMMANDS:
        files = code_deps.code_files(command)
        assert files == sorted(set(files)) and all((REPO / f).is_file() for f in files), command
        module = COMMANDS[command].replace(".", "/")
        assert f"src/{module}.py" in files


def test_lazy_and_relative_imports_count(tmp_path, monkeypatch):
    pkg = tmp_path / "locus"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from locus.sub import b\n")
    (pkg / "sub" / "b.py").write_text("from . import c\n")
    (pkg / "sub" / "c.py").write_text("import json\n")
    (pkg / "unused.py").write_text("")
    monkeypatch.setattr(code_deps, "PACKAGE", pkg)
    code_deps._closure.cache_clear()
    try:
        names = {p.relative_to(pkg).as_posix() for p in code_deps._closure("locus.a")}
    finally:
        code_deps._closure.cache_clear()
    assert names == {"__init__.py", "a.py", "sub/__init__.py", "sub/b.py", "sub/c.py"}


def test_every_stage_command_exists_and_its_paths_are_layout_patterns():
    for stage in pipeline.STAGES:
        assert stage.locus_command in COMMANDS, stage.name
        rendered = dvc_yaml.dvc_stage(stage)
        for path in [*rendered["outs"], *rendered.get("metrics", [])]:
            assert "{" not in path.replace("${", ""), (stage.name, path)  # every {name} was filled


def test_layout_functions_fill_the_patterns():
    from locus.params import load

    params = load(REPO / "params.yaml", None)
    assert str(layout.cell_dir(params, "cpp", 1e-3, 1)) == f"{params.results_dir}/runs/cpp/lora/lr=0.001/seed=1"
    assert layout.expand("{cell_dir}/x", results_dir="R") == "R/runs/{domain}/{method}/lr={lr}/seed={seed}/x"
    assert layout.arm_dir(params, "cpp", "all", 0) == layout.cell_dir(params, "cpp", params.validation.learning_rate, 0)


def test_experiment_jobs_are_dvcs_commands_in_dependency_order():
    """The GPU suite runs a cell without a workflow engine: the same commands dvc.yaml holds, each
    after every job whose outputs it reads (locus.pipeline.experiment_jobs)."""
    from locus.params import load
    from locus.pipeline import experiment_jobs

    params = load("params.yaml", "smoke")
    jobs = experiment_jobs(params)
    names = [name for name, _ in jobs]
    assert names[:2] == ["prepare_model", "quantize_base"] and names[-2:] == ["aggregate", "report"]
    first = {name: names.index(name) for name in reversed(names)}
    last = {name: len(names) - 1 - names[::-1].index(name) for name in names}
    for before, after in [
        ("prepare_data", "train"),
        ("evaluate_base", "train"),
        ("train", "delta"),
        ("train_full", "full_ft_effective"),
    ]:
        assert first[before] < first[after]
    assert last["represent"] < first["aggregate"] and last["full_ft_effective"] < first["aggregate"]
    cells = [c for n, c in jobs if n == "train"]
    assert len(cells) == len(params.grid.domains) * len(params.grid.seeds)
    assert all(f"--lr {params.lr}" in c or f"--lr {params.lr:g}" in c for c in cells)
