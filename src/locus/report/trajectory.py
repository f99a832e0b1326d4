"""Altair charts of learning trajectories (stages/trajectory.py, locus.analysis.trajectory), with computed notes.

`figures(params)` returns ({name: chart}, {name: one-line finding}); both are empty when
trajectories are off (trajectory.domains: []), so the report shows the section only when on.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from locus.analysis.trajectory import CELL, THRESHOLD, formation, rank_stability, read_trajectories
from locus.core.stats import LABELS
from locus.params import lr_label

SECTION = ("Learning trajectories: how the layer profile forms during training", "trajectory_")


def _profiles(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean over seeds per (domain, lr, step, layer), lr as its label."""
    df = table.groupby(["domain", "lr", "step", "layer"], as_index=False)[metric].mean()
    return df.assign(lr=df["lr"].map(lr_label))


def profile_evolution(table: pd.DataFrame, metric: str) -> alt.Chart:
    """Small multiples (domain × LR): the layer profile at every snapshot, darker = later step."""
    return (
        alt.Chart(_profiles(table, metric))
        .mark_line(point=alt.OverlayMarkDef(size=12))
        .encode(
            x=alt.X("layer:Q"),
            y=alt.Y(f"{metric}:Q", title=LABELS[metric], scale=alt.Scale(zero=False)),
            color=alt.Color("step:Q", title="optimizer step", scale=alt.Scale(scheme="viridis")),
            detail="step:N",
            tooltip=["domain", "lr", "step", "layer", alt.Tooltip(f"{metric}:Q", format=".3e")],
        )
        .properties(width=300, height=150)
        .facet(row=alt.Row("domain:N"), column=alt.Column("lr:N", title="LR"))
        .resolve_scale(y="independent")
        .properties(title=f"{LABELS[metric]} by layer at every snapshot (seeds averaged)")
    )


def describe_evolution(table: pd.DataFrame, metric: str) -> str:
    """Where each (domain, LR) profile peaks at its first snapshot with any change and at the last one.

    A snapshot whose profile is constant (typically all zero: warmup starts at LR 0) has no peak.
    """
    df = _profiles(table, metric)
    parts, same = [], 0
    for (domain, lr), g in df.groupby(["domain", "lr"], sort=True):
        varied = g.groupby("step")[metric].nunique() > 1
        if not varied.any():
            continue
        first, last = g[g.step == varied[varied].index.min()], g[g.step == g.step.max()]
        a, b = int(first.loc[first[metric].idxmax(), "layer"]), int(last.loc[last[metric].idxmax(), "layer"])
        same += a == b
        parts.append(f"{domain}@{lr} L{a} (step {int(first.step.iloc[0])})→L{b}")
    n = len(parts)
    if not n:
        return f"No snapshot shows any change in {LABELS[metric]} yet."
    return (
        f"Peak layer of {LABELS[metric]}, first snapshot with a change → last: {'; '.join(parts)} "
        f"({same} of {n} profile{'s' if n > 1 else ''} already peak at the final layer)."
    )


def rho_chart(rho: pd.DataFrame, metric: str) -> alt.Chart:
    """Spearman ρ of each snapshot's layer profile with the final one vs step, one panel per LR."""
    df = rho.assign(lr=rho["lr"].map(lr_label))
    lines = (
        alt.Chart(df)
        .mark_line(point=True)
        .encode(
            x=alt.X("step:Q", title="optimizer step"),
            y=alt.Y("rho:Q", title="Spearman ρ with the final profile", scale=alt.Scale(domain=[-1, 1])),
            color=alt.Color("domain:N"),
            detail="seed:N",
            tooltip=["domain", "lr", "seed", "step", alt.Tooltip("rho:Q", format=".3f")],
        )
    )
    rule = alt.Chart(pd.DataFrame({"rho": [THRESHOLD]})).mark_rule(strokeDash=[4, 4], color="gray").encode(y="rho:Q")
    return (
        alt.layer(lines, rule, data=df)
        .properties(width=360, height=200)
        .facet(column=alt.Column("lr:N", title="LR"))
        .properties(title=f"When the ranking of layers by {LABELS[metric]} stabilises (dashed: ρ = {THRESHOLD})")
    )


def describe_rho(table: pd.DataFrame, metric: str) -> str:
    """The median step (and fraction of training) from which ρ ≥ THRESHOLD, with the earliest and latest cells."""
    f = formation(table, metric)
    done = f.dropna(subset=["formed_step"])
    if done.empty:
        return f"No cell's {LABELS[metric]} profile reaches a stable layer ranking (the final profile is constant)."

    def name(r):
        return f"{r.domain}@lr={lr_label(r.lr)}" + (f"/seed={r.seed}" if f["seed"].nunique() > 1 else "")

    first, last = done.loc[done.formed_step.idxmin()], done.loc[done.formed_step.idxmax()]
    return (
        f"The layer ranking by {LABELS[metric]} stays at Spearman ρ ≥ {THRESHOLD} with the final one from step "
        f"{np.median(done.formed_step):g} (median over {len(done)} cells, {np.median(done.fraction):.0%} of "
        f"training): the locus forms earliest in {name(first)} (step {int(first.formed_step)} of "
        f"{int(first.last_step)}) and latest in {name(last)} (step {int(last.formed_step)} of {int(last.last_step)})."
    )


def figures(params) -> tuple[dict[str, alt.Chart], dict[str, str]]:
    """The trajectory section's charts and notes; ({}, {}) when trajectories are off."""
    table = read_trajectories(params)
    if table.empty:
        return {}, {}
    metric = params.report.metric
    rho = rank_stability(table, metric, CELL)
    charts = {"trajectory_profiles": profile_evolution(table, metric), "trajectory_rho": rho_chart(rho, metric)}
    notes = {"trajectory_profiles": describe_evolution(table, metric), "trajectory_rho": describe_rho(table, metric)}
    return charts, notes
