"""Learning trajectories: snapshots during training, their per-layer metrics, and rank stability."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file, save_file

from conftest import argv, on_cell, write_params
from locus.analysis.grid import by_layer
from locus.analysis.trajectory import formed_step, rank_stability, spearman
from locus.cli import main
from locus.params import ParamsError, load
from locus.training.snapshots import list_snapshots, snapshot_path


def train_cell(tmp_path, tiny_model, arith_raw, every: int, stale_step: int | None = None, quant: str = "nf4"):
    """prepare-data, init-adapter and train one tiny cell with snapshots every `every` steps."""
    params = write_params(
        tmp_path / "p.yaml",
        arith_raw,
        tmp_path / "res",
        quantization={"method": quant},
        training={
            "per_device_batch_size": 2,
            "grad_accum_steps": 2,
            "max_seq_length": 64,
            "max_steps": 4,
            "snapshot_every": every,
        },
        trajectory={"domains": ["arith"]},
    )
    common = ["--params", str(params)]
    data, cell = tmp_path / "res/data/arith", tmp_path / "res/runs/arith/lora/lr=0.001/seed=0"
    assert main(argv("prepare-data", *common, domain="arith", out=data)) == 0
    assert main(argv("init-adapter", *common, model=tiny_model, seed="0", out=cell / "adapter_init")) == 0
    if stale_step is not None:  # a snapshot left by an earlier run must not survive a fresh one
        snapshot_path(cell / "trajectory", stale_step).parent.mkdir(parents=True)
        save_file({"x": np.zeros(1, np.float32)}, snapshot_path(cell / "trajectory", stale_step))
    assert (
        main(
            argv(
                "train",
                *common,
                model=tiny_model,
                data=data,
                init=cell / "adapter_init",
                lr="0.001",
                seed="0",
                out=cell,
            )
        )
        == 0
    )
    return params, cell, json.loads((cell / "metrics.json").read_text())["optimizer_steps"]


def test_snapshots_and_trajectory_table(tmp_path, tiny_model, arith_raw):
    params, cell, steps = train_cell(tmp_path, tiny_model, arith_raw, every=1, stale_step=999)
    snaps = list_snapshots(cell / "trajectory")
    assert steps == 4 and list(snaps) == list(range(1, steps + 1))  # one per optimizer step, the stale one gone
    last, final = load_file(snaps[steps]), load_file(cell / "adapter_final/adapter_model.safetensors")
    assert set(last) == set(final)
    for key in final:
        assert last[key].dtype == final[key].dtype and np.array_equal(last[key], final[key]), key
    first = load_file(snaps[1])
    assert any(not np.array_equal(first[k], final[k]) for k in final), "snapshots must differ along training"

    common = ["--params", str(params), "--model", str(tiny_model), "--init", str(cell / "adapter_init")]
    assert (
        main(
            argv(
                "trajectory",
                *common,
                final=cell / "adapter_final",
                snapshots=cell / "trajectory",
                out=cell / "trajectory.parquet",
            )
        )
        == 0
    )
    assert main(argv("effective", *common, final=cell / "adapter_final", out=tmp_path / "eff.parquet")) == 0
    on_cell("delta", params, cell, out=tmp_path / "delta.parquet")
    table = pd.read_parquet(cell / "trajectory.parquet")
    assert sorted(table.step.unique()) == list(range(1, steps + 1)) and len(table) == steps * 3
    # The last step is adapter_final: its rows are what `locus effective` + `locus delta` + aggregate give.
    cell_cols = {"domain": "arith", "lr": 0.001, "seed": 0}
    expected = by_layer(
        pd.read_parquet(tmp_path / "delta.parquet").assign(**cell_cols),
        pd.read_parquet(tmp_path / "eff.parquet").assign(**cell_cols),
    ).drop(columns=list(cell_cols))
    got = table[table.step == steps].drop(columns="step").reset_index(drop=True)
    pd.testing.assert_frame_equal(got[expected.columns], expected, check_exact=True)
    assert (table.groupby("step")["fro"].sum().diff().dropna() != 0).all()  # the update changes every step


def test_snapshot_every_k_keeps_the_final_step(tmp_path, tiny_model, arith_raw):
    _, cell, steps = train_cell(tmp_path, tiny_model, arith_raw, every=3, quant="none")
    assert list(list_snapshots(cell / "trajectory")) == [3, 4]  # every 3rd step, then the last (4)


def test_spearman_and_formation_hand_checked():
    final = [1, 2, 3, 4, 5]
    # Σd² = 2 (two neighbours swapped) -> ρ = 1 - 6·2/(5·24) = 0.9; Σd² = 4 -> 0.8; reversed -> -1.
    assert spearman([5, 4, 3, 2, 1], final) == pytest.approx(-1.0)
    assert spearman([10, 20, 30, 50, 40], final) == pytest.approx(0.9)
    assert spearman([1, 3, 2, 5, 4], final) == pytest.approx(0.8)
    # Ties take their average rank (1.5, 1.5): Pearson of [1.5,1.5,3,4,5] and [1..5] = 9.5/√(9.5·10).
    assert spearman([7, 7, 8, 9, 10], final) == pytest.approx(9.5 / np.sqrt(95))
    assert np.isnan(spearman([3, 3, 3, 3, 3], final))

    profiles = {10: [5, 4, 3, 2, 1], 20: [1, 2, 3, 5, 4], 30: [1, 3, 2, 5, 4], 40: [1, 2, 3, 5, 4], 50: final}
    table = pd.DataFrame(
        [{"step": s, "layer": layer, "m": v} for s, p in profiles.items() for layer, v in enumerate(p)]
    )
    rho = rank_stability(table, "m")
    assert rho.rho.round(6).tolist() == [-1.0, 0.9, 0.8, 0.9, 1.0]
    assert formed_step(rho) == 40  # 0.9 at step 20, but 0.8 at 30: stays >= 0.9 only from step 40
    assert formed_step(rho, threshold=0.75) == 20
    assert formed_step(rho.assign(rho=[1.0, 1.0, 1.0, 1.0, np.nan])) is None
    assert formed_step(rho.assign(rho=1.0)) == 10


def test_trajectory_params_are_validated(tmp_path, arith_raw):
    def params(**over):
        return load(write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", **over))

    assert params().training.snapshot_every == 0 and params().trajectory.domains == []
    with pytest.raises(ParamsError, match="snapshot_every"):
        params(training={"snapshot_every": -1})
    with pytest.raises(ParamsError, match="training.snapshot_every=5 and trajectory.domains=\\[\\]"):
        params(training={"snapshot_every": 5})
    with pytest.raises(ParamsError, match="set both"):
        params(trajectory={"domains": ["arith"]})
    with pytest.raises(ParamsError, match="trajectory.domains"):
        params(training={"snapshot_every": 5}, trajectory={"domains": ["cpp"]})
    assert params(training={"snapshot_every": 5}, trajectory={"domains": ["arith"]}).training.snapshot_every == 5


def test_report_section_from_trajectory_files(tmp_path, arith_raw):
    """charts_trajectory reads each analysed cell's trajectory.parquet and writes computed notes."""
    from locus.layout import cell_dir
    from locus.report import trajectory as charts_trajectory

    params = load(
        write_params(
            tmp_path / "p.yaml",
            arith_raw,
            tmp_path / "res",
            grid={"domains": ["arith", "other"], "learning_rates": [0.001], "seeds": [0]},
            training={"snapshot_every": 10},
            trajectory={"domains": ["arith", "other"]},
        )
    )
    final = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # arith: reversed at step 10 (peak L0), ρ = 0.8 at 20, so it forms only at the last step (30);
    # other: nothing at step 10 (ρ NaN), ρ = 0.9 at 20 (forms at 20, first peak L3 at step 20 -> L4).
    steps = {
        "arith": {10: final[::-1], 20: np.array([1.0, 3.0, 2.0, 5.0, 4.0]), 30: final},
        "other": {10: final * 0.0, 20: np.array([1.0, 2.0, 3.0, 5.0, 4.0]), 30: final},
    }
    for domain, profile in steps.items():
        rows = [{"step": s, "layer": layer, "mean_abs": v} for s, p in profile.items() for layer, v in enumerate(p)]
        path = cell_dir(params, domain, 0.001, 0) / "trajectory.parquet"
        path.parent.mkdir(parents=True)
        pd.DataFrame(rows).to_parquet(path)
    figures, notes = charts_trajectory.figures(params)
    assert set(figures) == {"trajectory_profiles", "trajectory_rho", "trajectory_late_early"}
    assert all(chart.to_dict() for chart in figures.values())
    assert notes["trajectory_profiles"] == (
        "The mean |Δ| profile at the first snapshot with a change, at step 16, mid-run and at the last snapshot "
        "(those the run has): arith@0.001: step 10 highest at layer 0 (layer-to-layer spread 47.1%) → "
        "step 30 highest at layer 4 (layer-to-layer spread 47.1%); "
        "other@0.001: step 20 highest at layer 3 (layer-to-layer spread 47.1%) → "
        "step 30 highest at layer 4 (layer-to-layer spread 47.1%). One seed: not tested against seed noise."
    )
    assert notes["trajectory_rho"] == (
        "The layer ranking by mean |Δ| stays at Spearman ρ ≥ 0.9 with the final one from step 25 (median over "
        "2 cells, 83% of training): the locus forms earliest in other@lr=0.001 (step 20 of 30) and latest in "
        "arith@lr=0.001 (step 30 of 30)."
    )
    off = load(write_params(tmp_path / "q.yaml", arith_raw, tmp_path / "res"))
    assert charts_trajectory.figures(off) == ({}, {})


def workflow_commands(root, stage: str) -> tuple[set[str], set[str]]:
    """(Snakemake dry-run commands, dvc.yaml commands) of `locus <stage>` for the params.yaml in `root`."""
    from dvc.repo import Repo

    from conftest import run_tool

    dry = run_tool(root, "snakemake", "-n", "-p", "--forceall", "--cores", "1")
    assert dry.returncode == 0, dry.stdout[-2000:] + dry.stderr[-2000:]
    prefix = "Shell command: "
    smk = {
        " ".join(line[len(prefix) :].split("2>&1")[0].split())
        for line in dry.stdout.splitlines()
        if line.startswith(f"{prefix}locus {stage} ")
    }
    if not (root / ".dvc").exists():
        assert run_tool(root, "dvc", "init", "--no-scm", "-q").returncode == 0
    dvc = {" ".join(s.cmd.split()) for s in Repo(str(root)).index.stages if s.cmd.startswith(f"locus {stage} ")}
    return smk, dvc


def test_snakemake_and_dvc_wire_trajectories_alike(tmp_path):
    """Off: no trajectory command in either tool. On: the same per-cell commands in both."""
    import yaml

    from conftest import REPO, copy_repo

    root = copy_repo(tmp_path / "repo")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["grid"] = {"domains": ["physics", "cpp"], "learning_rates": [0.001], "seeds": [0, 1]}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    assert workflow_commands(root, "trajectory") == (set(), set())
    params["training"]["snapshot_every"] = 2
    params["trajectory"] = {"domains": ["physics"]}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    smk, dvc = workflow_commands(root, "trajectory")
    assert len(smk) == 2 and smk == dvc  # physics × seeds 0, 1
    assert all("--snapshots results/runs/physics/lora/lr=0.001/seed=" in c for c in smk)


def test_seed_agreement_by_step():
    """Seeds disagree at step 4 (reversed layer order: ρ = −1) and agree at step 8 (ρ = 1); the
    first step from which ρ stays ≥ 0.8 is 8."""
    import pandas as pd

    from locus.analysis.trajectory import formed_step, seed_agreement

    rows = [
        {"domain": "cpp", "lr": 0.001, "seed": seed, "step": step, "layer": layer, "mean_abs": value}
        for step in (4, 8)
        for seed in (0, 1)
        for layer in range(5)
        for value in [layer + 1 if (step == 8 or seed == 0) else 5 - layer]
    ]
    rho = seed_agreement(pd.DataFrame(rows), "mean_abs")
    assert rho.rho.tolist() == pytest.approx([-1.0, 1.0]) and rho.step.tolist() == [4, 8]
    assert formed_step(rho, 0.8) == 8


def test_trajectory_note_calls_a_peak_only_beyond_the_seed_band():
    """With seeds, each snapshot's profile is worded like every other profile note: flat when no layer
    clears the seed band, a locus only where one does (never the argmax of noise)."""
    from locus.report.trajectory import describe_evolution

    rng = np.random.default_rng(0)
    rows = []
    for seed in (0, 1, 2):
        for step, bump in ((4, 0.0), (8, 1.0)):
            for layer in range(10):
                value = 1.0 + (bump if layer >= 8 else 0.0) + 0.01 * rng.standard_normal()
                rows.append(
                    {"domain": "cpp", "lr": 2e-4, "seed": seed, "step": step, "layer": layer, "mean_abs": value}
                )
    note = describe_evolution(pd.DataFrame(rows), "mean_abs")
    assert note.startswith(
        "The mean |Δ| profile at the first snapshot with a change, at step 16, mid-run and at the last snapshot "
        "(those the run has): cpp@0.0002: step 4 flat "
    )
    assert "→ step 8 highest at layers 8–9 (beyond the seed band;" in note
    assert note.endswith(
        " At the last snapshot 1 of 1 profile has a locus (layers beyond the seed band and a layer-to-layer spread ≥ 5%)."
    )


def test_milestones_late_early_and_domains_at_equal_steps():
    """A long run is read at step 16, mid-run and the end; the late/early ratio per snapshot; domains
    with unequal budgets compared only at the steps both snapshotted."""
    from locus.analysis.trajectory import domains_at_equal_steps, late_early_along, milestones

    assert milestones([8, 16, 24, 32, 40, 48, 56, 64, 72, 80]) == [16, 40, 80]
    assert milestones([8, 16, 24, 32, 40, 48, 56, 64, 72, 80, 88, 96, 104, 111]) == [16, 56, 111]
    assert milestones([2, 4]) == [2, 4]  # no step 16: the middle (ties go to the earlier) and the last
    rows = []
    for domain, last, scale in (("long", 24, 2.0), ("short", 16, 1.0)):
        for seed in (0, 1, 2):
            for step in range(8, last + 1, 8):
                for layer in range(9):  # thirds: layers 0–2 early, 6–8 late
                    late = 3.0 if layer >= 6 else 1.0
                    value = scale * step * (late if domain == "long" else 1.0) * (1 + 0.01 * seed)
                    rows.append(
                        {"domain": domain, "lr": 1e-3, "seed": seed, "step": step, "layer": layer, "mean_abs": value}
                    )
    table = pd.DataFrame(rows)
    ratios = late_early_along(table, "mean_abs")
    assert np.allclose(ratios[ratios.domain == "long"].ratio, 3.0) and np.allclose(
        ratios[ratios.domain == "short"].ratio, 1.0
    )
    equal = domains_at_equal_steps(table, "mean_abs")
    assert list(equal.step) == [8, 16]  # step 24 only the long domain reached
    # long's mean over layers is 2 × (3·3 + 6·1)/9 = 10/3 × short's at every common step
    assert np.allclose(equal.ratio, 10 / 3) and set(equal.largest) == {"long"}
    assert np.allclose(equal.p_size, 1 / 4)  # 2 domains × 3 seeds: 2² labellings up to renaming, the floor


def test_the_report_says_when_domain_budgets_differ():
    from locus.stages.report import budget_words

    equal = {("a", 1e-3, 0): {"optimizer_steps": 16}, ("b", 1e-3, 0): {"optimizer_steps": 16}}
    assert budget_words(equal) == ""
    epoch = {("math_thinking", 1e-3, s): {"optimizer_steps": 80} for s in (0, 1)}
    epoch |= {("physics", 1e-3, s): {"optimizer_steps": 111} for s in (0, 1)}
    words = budget_words(epoch, trajectories=True)
    assert words.startswith("Unequal budgets — optimizer steps per domain (LR 0.001: math_thinking 80, physics 111)")
    assert "mean |Δ| ÷ Σ lr_t" in words and "equal steps in the learning-trajectory section" in words
    assert "trajectory" not in budget_words(epoch)  # no such section without snapshots: not pointed to
