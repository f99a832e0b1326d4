"""Representation change by layer (locus.analysis.representation) and whether it ranks the layers
as the weight-change maps do.

Per cell, Spearman ρ across layers between the layer-alone representation change
(rep_change_local) and each weight map; ρ near 1: the layers whose weights moved most are the ones
whose computation changed most; near 0: the weight map does not say where the function changed.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from locus.core.ranking import critical_rho, spearman
from locus.core.stats import CELL, LABELS, PER_LR
from locus.params import lr_label
from locus.report.charts import profiles
from locus.report.profiles import describe_profile

SECTION = ("Representation change: where the computation changed (1 − linear CKA of hidden states)", "representation")
WEIGHT_MAPS = (PER_LR, "rel_fro")


def agreement(layers: pd.DataFrame) -> pd.DataFrame:
    """One row per cell: Spearman ρ over layers between rep_change_local and each weight map."""
    rows = []
    for keys, cell in layers.groupby(CELL, sort=True):
        rows.append(
            dict(zip(CELL, keys)) | {m: spearman(cell.rep_change_local, cell[m]) for m in WEIGHT_MAPS if m in cell}
        )
    return pd.DataFrame(rows)


def describe_agreement(layers: pd.DataFrame, lr: float) -> str:
    rho = agreement(layers[layers.lr == lr])
    n_layers = layers[layers.lr == lr].layer.nunique()
    crit = critical_rho(n_layers)
    parts = []
    for m in [m for m in WEIGHT_MAPS if m in rho]:
        per_domain = rho.groupby("domain")[m].agg(["mean", "std", "count"])
        parts.append(
            f"with {LABELS[m]}: "
            + ", ".join(
                f"{d} {r['mean']:+.2f}"
                + (f" ± {r['std']:.2f}" if r["count"] > 1 and np.isfinite(r["std"]) else "")
                + ("*" if abs(r["mean"]) > crit else "")
                for d, r in per_domain.iterrows()
            )
        )
    seeds = int(rho.seed.nunique()) if len(rho) else 0
    spread = f" (mean ± s.d. over {seeds} seeds)" if seeds > 1 else " (one seed)"
    return (
        " Does the computation change where the weights moved? Spearman ρ over layers between the "
        f"layer-alone representation change and the weight maps{spread}: " + "; ".join(parts) + f" (* beyond "
        f"chance: |ρ| > {crit:.2f} over {n_layers} layers, p ≈ 0.05; unmarked, the two rankings are not shown related)."
    )


def figures(layers: pd.DataFrame) -> tuple[dict[str, alt.Chart], dict[str, str]]:
    """Per LR: the layer-alone change beside the end-to-end change, and their sentences; ({}, {})
    when the cells carry no representation change."""
    if "rep_change_local" not in layers:
        return {}, {}
    local = profiles(layers, "rep_change_local", "representation", width=360)
    end_to_end = profiles(layers, "rep_change", "representation", width=360)
    charts = {name: alt.hconcat(chart, end_to_end[name]) for name, chart in local.items()}
    notes = {
        f"representation_lr={lr_label(lr)}": describe_profile(layers, lr, "rep_change_local")
        + describe_agreement(layers, lr)
        + " Right: end to end, the change accumulated up to each layer (it carries what earlier layers changed)."
        for lr in sorted(layers.lr.unique())
    }
    return charts, notes
