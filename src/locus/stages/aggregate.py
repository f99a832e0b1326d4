"""Stage: aggregate every cell's delta.parquet by layer (and by layer × module).

layers.parquet  one row per (domain, lr, seed, layer): the seed's four statistics averaged with
                equal weight over that layer's LoRA matrices (A and B of every adapted module),
                exactly as the seed experiment aggregates.
modules.parquet one row per (domain, lr, seed, layer, block, module): averaged over A and B —
                for layer × module heatmaps.
The cell list comes from params (never a glob), so stale cells of an old grid are ignored.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from locus import io
from locus.layout import cell_dir, cells
from locus.stats import STATISTICS

CELL = ["domain", "lr", "seed"]


def read_grid(params) -> pd.DataFrame:
    frames = []
    for domain, lr, seed in cells(params):
        path = cell_dir(params, domain, lr, seed) / "delta.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing delta for cell {domain}, lr={lr}, seed={seed}")
        frames.append(pd.read_parquet(path).assign(domain=domain, lr=lr, seed=seed))
    return pd.concat(frames, ignore_index=True)


def by_layer(deltas: pd.DataFrame) -> pd.DataFrame:
    grouped = deltas.groupby(CELL + ["layer"], sort=True)
    out = grouped[list(STATISTICS)].mean()
    out["n_matrices"] = grouped.size()
    return out.reset_index()


def by_module(deltas: pd.DataFrame) -> pd.DataFrame:
    return deltas.groupby(CELL + ["layer", "block", "module"], sort=True)[list(STATISTICS)].mean().reset_index()


def add_arguments(parser) -> None:
    parser.add_argument("--out-dir", required=True, help="where layers.parquet and modules.parquet go")


def run(args, params) -> None:
    deltas = read_grid(params)
    out = Path(args.out_dir)
    for name, table in (("layers", by_layer(deltas)), ("modules", by_module(deltas))):
        with io.atomic_path(out / f"{name}.parquet") as tmp:
            table.to_parquet(tmp, index=False)
    print(f"aggregated {deltas.groupby(CELL).ngroups} cells -> {out}/layers.parquet, modules.parquet")
