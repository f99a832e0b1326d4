"""Stage: aggregate every cell's delta.parquet and effective.parquet by layer (and layer × module).

layers.parquet  one row per (domain, lr, seed, layer): the seed's four statistics averaged with
                equal weight over that layer's LoRA matrices (A and B of every adapted module),
                exactly as the seed experiment aggregates; plus the effective-update metrics and
                the representation change of the layer (represent's representation.parquet).
modules.parquet one row per (domain, lr, seed, layer, block, module): averaged over A and B —
                for layer × module heatmaps.
summary.json    per domain (and LR, when the grid has several): eval loss before/after, train
                loss and the report metric's mean over layers, averaged over seeds — the
                metrics `dvc exp show` and `dvc metrics diff` compare.
similarity.parquet  subspace similarity φ of ΔW between every pair of cells, per layer and module
                (LoRA §7.2; locus.core.similarity).
layer_profile.csv  the report metric by layer, one column per domain (mean over seeds and LRs;
                a DVC experiment has one LR) — the file `dvc plots diff` compares.
evaluation.parquet, full_ft_*.parquet  the optional experiments' tables, when switched on in
                params (locus.analysis.experiments).
The cell list comes from params (never a glob), so stale cells of an old grid are ignored.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from locus import io
from locus.analysis.experiments import tables as experiment_tables
from locus.analysis.grid import CELL, by_layer, by_module, read_grid, read_metrics
from locus.core.similarity import similarity_table
from locus.layout import cell_dir, cells
from locus.params import lr_label


def layer_profile(layers: pd.DataFrame, metric: str) -> pd.DataFrame:
    wide = layers.pivot_table(index="layer", columns="domain", values=metric, aggfunc="mean")
    return wide.reset_index().rename_axis(columns=None)


def summary(params, layers: pd.DataFrame) -> dict:
    """{domain (or "domain@lr=..."): numbers}, seeds averaged; keys are stable across DVC experiments."""
    rows = [
        {
            "domain": domain,
            "lr": lr,
            "eval_loss_before": m["eval_loss_before"],
            "eval_loss_after": m["eval_loss_after"],
            "train_loss": m["train_loss"],
        }
        for (domain, lr, _), m in read_metrics(params).items()
    ]
    metric = params.report.metric
    per_cell = layers.groupby(CELL)[metric].mean().rename(f"{metric}_mean_over_layers").reset_index()
    table = pd.DataFrame(rows).merge(per_cell.drop(columns="seed").groupby(["domain", "lr"]).mean().reset_index())
    table = table.groupby(["domain", "lr"], sort=False).mean().reset_index()
    single_lr = table["lr"].nunique() == 1
    return {
        (r.domain if single_lr else f"{r.domain}@lr={lr_label(r.lr)}"): {
            k: float(v) for k, v in r._asdict().items() if k not in ("Index", "domain", "lr")
        }
        for r in table.itertuples()
    }


def add_arguments(parser) -> None:
    parser.add_argument("--out-dir", required=True, help="where layers.parquet and modules.parquet go")


def run(args, params) -> None:
    # Everything is read and computed before the first write: a bad input leaves no output at all.
    deltas, effective = read_grid(params, "delta.parquet"), read_grid(params, "effective.parquet")
    layers = by_layer(deltas, effective, read_grid(params, "representation.parquet"))
    adapters = {cell: cell_dir(params, *cell) / "adapter_final" for cell in cells(params)}
    tables = {
        "layers": layers,
        "modules": by_module(deltas, effective),
        "similarity": similarity_table(adapters, k=params.analysis.similarity_k),
        **experiment_tables(params, layers),  # optional experiments, if on
    }
    totals, profile = summary(params, layers), layer_profile(layers, params.report.metric)
    out = Path(args.out_dir)
    for name, table in tables.items():
        io.write_parquet(out / f"{name}.parquet", table)
    io.write_json(out / "summary.json", totals)
    io.write_text(out / "layer_profile.csv", profile.to_csv(index=False))
    print(f"aggregated {deltas.groupby(CELL).ngroups} cells -> {out}/layers.parquet, modules.parquet")
