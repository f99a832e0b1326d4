"""Integration: the real pipeline (Snakemake, real SmolLM2, real data) on the smoke preset.

Every test reads the session's one smoke run (conftest.smoke_run); test_adopt and test_dvc then
hand the same run to DVC, so these read-only checks run first.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import edited, probe_modules, run_tool, snakemake_reasons, stages_importing
from locus import layout
from locus.params import load


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    return run_tool(workdir, "snakemake", "--cores", "2", *args)


@pytest.fixture(scope="session")
def params(smoke_run):
    cwd = os.getcwd()
    os.chdir(smoke_run)
    try:
        return load("params.yaml", None)
    finally:
        os.chdir(cwd)


def test_every_cell_has_its_outputs(smoke_run, params):
    for domain, lr, seed in layout.cells(params):
        cell = smoke_run / layout.cell_dir(params, domain, lr, seed)
        for adapter in (smoke_run / layout.init_dir(params, seed), cell / "adapter_final"):
            assert (adapter / "adapter_model.safetensors").is_file()
            assert json.loads((adapter / "adapter_config.json").read_text())["r"] == 16
        metrics = json.loads((cell / "metrics.json").read_text())
        assert metrics["quantization"] == "nf4" and metrics["optimizer_steps"] >= 2
        assert np.isfinite(metrics["eval_loss_after"])
        assert len((cell / "train_log.csv").read_text().splitlines()) == metrics["optimizer_steps"] + 1


def test_delta_parquet_layout(smoke_run, params):
    domain, lr, seed = layout.cells(params)[0]
    df = pd.read_parquet(smoke_run / layout.cell_dir(params, domain, lr, seed) / "delta.parquet")
    assert list(df.columns) == [
        "layer",
        "block",
        "module",
        "matrix",
        "n",
        "mean",
        "var",
        "mean_abs",
        "var_abs",
        "mean_abs_per_lr",
    ]
    metrics = json.loads((smoke_run / layout.cell_dir(params, domain, lr, seed) / "metrics.json").read_text())
    assert metrics["sum_lr"] > 0 and metrics["train"]["examples"] == params.data.max_train_examples
    assert np.allclose(df.mean_abs_per_lr, df.mean_abs / metrics["sum_lr"])
    assert len(df) == 30 * 6 * 2 and sorted(df.layer.unique()) == list(range(30))
    assert set(df.module) == {"q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"}
    # SmolLM2: q is 576x576, so lora_A (16x576) has 9216 entries; up_proj's lora_B is 1536x16.
    assert df[(df.module == "q_proj") & (df.matrix == "A")].n.unique().tolist() == [16 * 576]
    assert df[(df.module == "up_proj") & (df.matrix == "B")].n.unique().tolist() == [1536 * 16]


def test_effective_update_of_a_real_cell(smoke_run, params):
    """‖s·B·A‖_F from the saved adapter, densely, equals the effective stage's number."""
    from safetensors.numpy import load_file

    domain, lr, seed = layout.cells(params)[1]
    cell = smoke_run / layout.cell_dir(params, domain, lr, seed)
    eff = pd.read_parquet(cell / "effective.parquet")
    assert len(eff) == 30 * 6 and (eff["rank"] == 16).all() and (eff["scaling"] == 2.0).all()
    adapter = load_file(cell / "adapter_final" / "adapter_model.safetensors")
    key = "base_model.model.model.layers.17.mlp.down_proj"
    dense = 2.0 * adapter[f"{key}.lora_B.weight"].astype(np.float64) @ adapter[f"{key}.lora_A.weight"]
    row = eff[(eff.layer == 17) & (eff.module == "down_proj")].iloc[0]
    assert row.fro == pytest.approx(np.linalg.norm(dense), rel=1e-9)
    assert row.spectral == pytest.approx(np.linalg.norm(dense, 2), rel=1e-9)


def test_hive_layout_reads_as_one_dataset(smoke_run, params):
    import pyarrow.dataset as ds

    runs = smoke_run / params.results_dir / "runs"
    for domain in params.grid.domains:
        files = [str(p) for p in sorted((runs / domain).glob("lora/lr=*/seed=*/delta.parquet"))]
        table = (
            ds.dataset(files, format="parquet", partitioning="hive", partition_base_dir=str(runs / domain))
            .to_table()
            .to_pandas()
        )
        assert len(table) == len(params.grid.learning_rates) * len(params.grid.seeds) * 360
        assert set(table["lr"].astype(float)) == set(params.grid.learning_rates)
        assert set(table["seed"]) == set(params.grid.seeds)


def test_statistics_match_an_independent_computation(smoke_run, params):
    """Recompute the seed's statistics with torch straight from the saved safetensors."""
    from safetensors import safe_open

    domain, lr, seed = layout.cells(params)[-1]
    cell = smoke_run / layout.cell_dir(params, domain, lr, seed)
    df = pd.read_parquet(cell / "delta.parquet").set_index(["layer", "module", "matrix"])
    with (
        safe_open(smoke_run / layout.init_dir(params, seed) / "adapter_model.safetensors", "pt") as a,
        safe_open(cell / "adapter_final" / "adapter_model.safetensors", "pt") as b,
    ):
        for key in a.keys():
            parts = key.split(".")
            layer, module, matrix = int(parts[4]), parts[6], parts[7][-1]
            d = b.get_tensor(key).double() - a.get_tensor(key).double()
            row = df.loc[(layer, module, matrix)]
            assert row["mean"] == pytest.approx(d.mean().item(), rel=1e-9, abs=1e-15)
            assert row["var"] == pytest.approx(d.var(unbiased=False).item(), rel=1e-9)
            assert row["mean_abs"] == pytest.approx(d.abs().mean().item(), rel=1e-9)
            assert row["var_abs"] == pytest.approx(d.abs().var(unbiased=False).item(), rel=1e-9)


def test_layer_aggregation(smoke_run, params):
    layers = pd.read_parquet(smoke_run / params.results_dir / "layers.parquet")
    assert len(layers) == len(layout.cells(params)) * 30
    assert (layers.n_matrices == 12).all()
    assert (layers.fro > 0).all() and (layers.rel_fro > 0).all()
    assert layers.attention_share.between(0, 1).all()
    # representation change (1 − CKA) lies in [0, 1], and every trained cell changed its computation somewhere
    assert layers[["rep_change", "rep_change_local"]].apply(lambda c: c.between(-1e-6, 1)).all().all()
    assert (layers.groupby(["domain", "lr", "seed"]).rep_change.max() > 0).all()
    sim = pd.read_parquet(smoke_run / params.results_dir / "similarity.parquet")
    assert sim.phi.between(0, 1 + 1e-9).all() and len(sim) > 0
    modules = pd.read_parquet(smoke_run / params.results_dir / "modules.parquet")
    assert len(modules) == len(layout.cells(params)) * 30 * 6
    # Layer means are equal-weight means over the layer's matrices, as in the seed.
    domain, lr, seed = layout.cells(params)[0]
    delta = pd.read_parquet(smoke_run / layout.cell_dir(params, domain, lr, seed) / "delta.parquet")
    row = layers[(layers.domain == domain) & (layers.lr == lr) & (layers.seed == seed) & (layers.layer == 7)]
    assert row.mean_abs.item() == pytest.approx(delta[delta.layer == 7].mean_abs.mean())


def test_report_is_self_contained(smoke_run, params):
    html = (smoke_run / params.results_dir / "report.html").read_text()
    assert "vegaEmbed" in html and "<script src" not in html and "cdn.jsdelivr" not in html
    for lr in ("0.0002", "0.001"):
        assert f"LR = {lr}" in html
    for domain in params.grid.domains:
        assert domain in html
    figures = smoke_run / params.results_dir / "figures"
    n_lr = len(params.grid.learning_rates)
    # seed figures (cross-domain per LR, per domain and LR, heatmap) + effective (profile, attention
    # share and similarity per LR, one heatmap) + representation change per LR
    n_charts = 1 + n_lr + len(params.grid.domains) * n_lr + 1 + 3 * n_lr + 1 + n_lr  # explorer first
    # optional experiments on in the smoke preset: evaluation (one per LR), full FT (a profile per
    # domain, ρ, rank), each with its finding
    n_experiments = n_lr * bool(params.evaluation.domains) + (len(params.full_ft.domains) + 2) * bool(
        params.full_ft.domains
    )
    n_charts += n_experiments
    assert html.count("class=note") == 5 * n_lr + 1 + n_experiments  # a computed finding above each summary figure
    assert len(list(figures.glob("*.png"))) == n_charts and len(list(figures.glob("*.svg"))) == n_charts
    assert (figures / "cross_domain_lr=0.001.png").read_bytes()[:4] == b"\x89PNG"
    assert "Representation change" in html and "Spearman ρ over layers between the layer-alone" in html


def test_held_out_evaluation_and_full_ft_arm(smoke_run, params):
    """The optional experiments of the smoke preset: evaluation.parquet and the full-FT tables."""
    results = smoke_run / params.results_dir
    ev = pd.read_parquet(results / "evaluation.parquet")
    n_eval = len(params.evaluation.domains)
    assert len(ev) == n_eval * len(params.grid.learning_rates) * len(params.grid.seeds) * n_eval
    assert np.isfinite(ev[["loss_before", "loss_after"]]).all().all() and ev.accuracy_after.between(0, 1).all()
    domain, lr, seed = layout.evaluated_cells(params)[0]
    metrics = json.loads((smoke_run / layout.cell_dir(params, domain, lr, seed) / "metrics.json").read_text())
    base = ev[(ev.domain == domain) & ev.in_domain].loss_before.iloc[0]
    # the base model's score, made once per domain, is every cell's eval loss before training
    assert base == metrics["eval_loss_before"]
    ft = pd.read_parquet(results / "full_ft_modules.parquet")
    assert len(ft) == len(layout.full_ft_cells(params)) * 30 * 6 and (ft.fro > 0).all()
    assert (ft.effective_rank > 16).all()  # full-FT ΔW is not rank-16
    rho = pd.read_parquet(results / "full_ft_rho.parquet")
    assert len(rho) == len(layout.full_ft_cells(params)) * len(params.grid.learning_rates) * 2
    assert rho.rho.between(-1, 1).all()
    html = (results / "report.html").read_text()
    assert (
        "Held-out evaluation" in html
        and "Full fine-tuning vs LoRA" in html
        and "LoRA&#x27;s layer profile vs full FT&#x27;s" in html
    )


def test_rerun_has_nothing_to_do(smoke_run):
    run = snakemake(smoke_run, "-n", "--", "results/smoke/report.html")
    assert run.returncode == 0 and "Nothing to be done" in run.stdout + run.stderr


def test_editing_a_module_makes_exactly_the_rules_importing_it_stale(smoke_run):
    """Code dependencies are derived: editing a file a rule's command imports (even transitively)
    reruns that rule's jobs, and no other rule is rerun for the edit itself (only as downstream of
    those); a file no rule imports leaves everything up to date."""
    target = ["--", "results/smoke/report.html"]
    present = snakemake_reasons(snakemake(smoke_run, "-n", "--forceall", *target).stdout)["forced"]
    for module in probe_modules():
        with edited(smoke_run / module):
            run = snakemake(smoke_run, "-n", *target)
        assert run.returncode == 0, run.stderr[-2000:]
        reasons = snakemake_reasons(run.stdout)
        planned = set().union(*reasons.values())
        importing = stages_importing(module) & present
        assert importing <= planned and reasons.get("updated input files", set()) <= importing, module
    assert "Nothing to be done" in snakemake(smoke_run, "-n", *target).stdout


def test_snakemake_report(smoke_run):
    run = snakemake(smoke_run, "--report", "results/smoke/snakemake_report.zip", "--", "results/smoke/report.html")
    assert run.returncode == 0, run.stderr[-2000:]
    assert (smoke_run / "results/smoke/snakemake_report.zip").stat().st_size > 10_000
