"""A grid's per-cell tables and metrics read once, and aggregated by layer and by module.

The cell list comes from params (never a glob), so stale cells of an old grid are ignored.
"""

from __future__ import annotations

import pandas as pd

from locus import io
from locus.core.effective import METRICS, layer_effective
from locus.core.stats import CELL, PER_LR, REPRESENTATION, STATISTICS
from locus.layout import cell_dir, cells


def read_grid(params, filename: str) -> pd.DataFrame:
    """One per-cell table (delta.parquet or effective.parquet) for the whole grid, cell columns added."""
    frames = []
    for domain, lr, seed in cells(params):
        path = cell_dir(params, domain, lr, seed) / filename
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing for cell {domain}, lr={lr}, seed={seed}")
        frames.append(io.read_parquet(path).assign(domain=domain, lr=lr, seed=seed))
    return pd.concat(frames, ignore_index=True)


def read_metrics(params) -> dict[tuple, dict]:
    """{(domain, lr, seed): that cell's metrics.json} for the whole grid (the run table, the summary)."""
    return {cell: io.read_json(cell_dir(params, *cell) / "metrics.json") for cell in cells(params)}


def seed_columns(deltas: pd.DataFrame) -> list[str]:
    """The seed's four statistics, plus the Adam-aware mean_abs_per_lr when the cells carry it."""
    return list(STATISTICS) + ([PER_LR] if PER_LR in deltas else [])


def by_layer(deltas: pd.DataFrame, effective: pd.DataFrame, representation: pd.DataFrame | None = None) -> pd.DataFrame:
    """Seed statistics averaged over the layer's matrices, plus the layer's effective update
    (locus.core.effective.layer_effective: fro, rel_fro, attention_share, attention_w0_share) and,
    when given, its representation change (locus.analysis.representation: rep_change, rep_change_local)."""
    grouped = deltas.groupby(CELL + ["layer"], sort=True)
    out = grouped[seed_columns(deltas)].mean()
    out["n_matrices"] = grouped.size()
    keys = CELL + ["layer"]
    out = out.reset_index().merge(layer_effective(effective), on=keys, validate="one_to_one")
    if representation is not None:
        out = out.merge(representation[keys + list(REPRESENTATION)], on=keys, how="left", validate="one_to_one")
    return out


def by_module(deltas: pd.DataFrame, effective: pd.DataFrame) -> pd.DataFrame:
    keys = CELL + ["layer", "block", "module"]
    seed_stats = deltas.groupby(keys, sort=True)[seed_columns(deltas)].mean().reset_index()
    return seed_stats.merge(effective[keys + list(METRICS) + ["w0_fro"]], on=keys, how="left", validate="one_to_one")
