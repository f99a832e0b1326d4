"""Altair charts of learning trajectories (stages/trajectory.py, locus.analysis.trajectory), with computed notes.

`figures(params)` returns ({name: chart}, {name: one-line finding}); both are empty when
trajectories are off (trajectory.domains: []), so the report shows the section only when on.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from locus.analysis.trajectory import (
    CELL,
    EARLY_STEP,
    THRESHOLD,
    domains_at_equal_steps,
    formation,
    late_early_along,
    milestones,
    rank_stability,
    read_trajectories,
)
from locus.core.ranking import FLAT_SPREAD, banded_profiles, profile_shape
from locus.core.stats import LABELS
from locus.params import lr_label
from locus.report.charts import band_tooltip
from locus.report.profiles import shape_words
from locus.report.words import ONE_SEED

SECTION = ("Learning trajectories: how the layer profile forms during training", "trajectory_")


def profile_evolution(table: pd.DataFrame, metric: str) -> alt.Chart:
    """Small multiples (domain × LR): the seed-mean layer profile at every snapshot, darker = later
    step, the last snapshot's seed band shaded (the band describe_evolution tests against)."""
    df = banded_profiles(table, metric, by=("domain", "lr", "step"))
    df = df.assign(lr=df["lr"].map(lr_label), last=df.step == df.groupby(["domain", "lr"]).step.transform("max"))
    base = alt.Chart().encode(x=alt.X("layer:Q"))
    lines = base.mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        y=alt.Y("value:Q", title=LABELS[metric], scale=alt.Scale(zero=False)),
        color=alt.Color("step:Q", title="optimizer step", scale=alt.Scale(scheme="viridis")),
        detail="step:N",
        tooltip=band_tooltip("domain", "lr", "step", "layer"),
    )
    band = base.transform_filter("datum.last").mark_area(opacity=0.2, color="gray").encode(y="low:Q", y2="high:Q")
    shaded = df.seeds.max() > 1
    return (
        alt.layer(*((band, lines) if shaded else (lines,)), data=df)
        .properties(width=300, height=150)
        .facet(row=alt.Row("domain:N"), column=alt.Column("lr:N", title="LR"))
        .resolve_scale(y="independent")
        .properties(
            title=f"{LABELS[metric]} by layer at every snapshot (seed mean"
            + ("; shaded: the last snapshot's seed band)" if shaded else ")")
        )
    )


def describe_evolution(table: pd.DataFrame, metric: str) -> str:
    """Each (domain, LR) profile at its first snapshot with any change, then at its milestones
    (analysis.trajectory.milestones: step 16, mid-run, the last), in the words of every other profile
    note (report.profiles.shape_words): flat, or higher or lower beyond the seed band; with one seed,
    where it is highest, said to be untested.

    A snapshot whose seed-mean profile is constant (typically all zero: warmup starts at LR 0) has
    no shape to describe.
    """
    parts, located, seeds = [], 0, table["seed"].nunique()
    for (domain, lr), g in table.groupby(["domain", "lr"], sort=True):
        per_step = {
            int(step): s.pivot_table(index="layer", columns="seed", values=metric) for step, s in g.groupby("step")
        }
        varied = [step for step, per_seed in per_step.items() if per_seed.mean(axis=1).nunique() > 1]
        if not varied:
            continue
        read_at = sorted({min(varied), *(s for s in milestones(per_step) if s in varied)})
        shapes = {step: profile_shape(per_step[step]) for step in read_at}
        located += not shapes[max(per_step)]["flat"] if max(per_step) in shapes else 0
        parts.append(
            f"{domain}@{lr_label(lr)}: "
            + " → ".join(shape_words(f"step {step}", shape, untested="") for step, shape in shapes.items())
        )
    if not parts:
        return f"No snapshot shows any change in {LABELS[metric]} yet."
    text = (
        f"The {LABELS[metric]} profile at the first snapshot with a change, at step {EARLY_STEP}, mid-run and at the "
        f"last snapshot (those the run has): {'; '.join(parts)}."
    )
    if seeds == 1:
        return f"{text} {ONE_SEED.capitalize()}."
    n = len(parts)
    return (
        f"{text} At the last snapshot {located} of {n} {'profiles have' if n > 1 else 'profile has'} a locus "
        f"(layers beyond the seed band and a layer-to-layer spread ≥ {FLAT_SPREAD:.0%})."
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


def late_early_chart(ratios: pd.DataFrame, metric: str) -> alt.Chart:
    """The late/early ratio of the layer profile against the optimizer step, one line per domain
    (seed mean, shaded ± one s.d. across seeds), one panel per LR."""
    g = ratios.groupby(["domain", "lr", "step"]).ratio
    df = g.mean().rename("value").to_frame().join(g.std(ddof=1).fillna(0.0).rename("sd")).reset_index()
    df = df.assign(low=df.value - df.sd, high=df.value + df.sd, lr=df["lr"].map(lr_label))
    base = alt.Chart().encode(x=alt.X("step:Q", title="optimizer step"), color=alt.Color("domain:N"))
    line = base.mark_line(point=True).encode(
        y=alt.Y("value:Q", title="late ÷ early layers", scale=alt.Scale(zero=False)),
        tooltip=["domain", "lr", "step", alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("sd:Q", format=".3f")],
    )
    band = base.mark_area(opacity=0.2).encode(y="low:Q", y2="high:Q")
    return (
        alt.layer(band, line, data=df)
        .properties(width=360, height=200)
        .facet(column=alt.Column("lr:N", title="LR"))
        .properties(
            title=f"{LABELS[metric]}: last third of the layers ÷ first third, along training (± s.d. over seeds)"
        )
    )


def describe_late_early(ratios: pd.DataFrame, metric: str) -> str:
    """The late/early ratio of each (domain, LR) at its milestones, seed mean ± s.d."""
    parts = []
    for (domain, lr), g in ratios.groupby(["domain", "lr"], sort=True):
        per_step = g.groupby("step").ratio
        mean, sd = per_step.mean(), per_step.std(ddof=1)
        at = [
            f"{mean[s]:.2f}" + (f" ± {sd[s]:.2f}" if sd[s] == sd[s] else "") + f" at step {s}"
            for s in milestones(mean.index)
        ]
        parts.append(f"{domain}@{lr_label(lr)} {', '.join(at)}")
    seeds = ratios["seed"].nunique()
    spread = " (seed mean ± s.d.)" if seeds > 1 else f" ({ONE_SEED})"
    return f"Late ÷ early layers in {LABELS[metric]}{spread}: {'; '.join(parts)}."


def describe_equal_steps(table: pd.DataFrame, metric: str) -> str:
    """The domains compared at equal optimizer steps (every step all of an LR's domains snapshotted):
    size ratio and permutation-test p at step 16 and at the last common step. '' with one domain."""
    equal = domains_at_equal_steps(table, metric)
    equal = equal[equal.domains > 1]
    if equal.empty:
        return ""
    parts = []
    for lr, g in equal.groupby("lr", sort=True):
        g = g.set_index("step")
        for step in sorted({s for s in (EARLY_STEP, int(g.index.max())) if s in g.index}):
            r = g.loc[step]
            test = f"size p = {r.p_size:.2g}, shape p = {r.p_shape:.2g}" if r.p_size == r.p_size else ONE_SEED
            parts.append(f"LR {lr_label(lr)}, step {step}: {r.largest} {r.ratio:.2f}× {r.smallest} ({test})")
    lasts = table.groupby(["domain", "lr"]).step.max()
    schedules = (
        " Equal steps are not equal schedules here: each cell's cosine schedule spans its own budget, so at a "
        "given step the domains have had different learning rates."
        if lasts.groupby(level="lr").nunique().max() > 1
        else ""
    )
    return (
        f"The domains at equal optimizer steps, {LABELS[metric]} mean over layers: {'; '.join(parts)}. The "
        "smallest p a permutation test over these cells allows is set by how many domains and seeds there "
        f"are (the page's opening paragraph).{schedules}"
    )


def figures(params) -> tuple[dict[str, alt.Chart], dict[str, str]]:
    """The trajectory section's charts and notes; ({}, {}) when trajectories are off."""
    table = read_trajectories(params)
    if table.empty:
        return {}, {}
    metric = params.report.metric
    rho = rank_stability(table, metric, CELL)
    ratios = late_early_along(table, metric)
    charts = {
        "trajectory_profiles": profile_evolution(table, metric),
        "trajectory_rho": rho_chart(rho, metric),
        "trajectory_late_early": late_early_chart(ratios, metric),
    }
    notes = {
        "trajectory_profiles": describe_evolution(table, metric),
        "trajectory_rho": describe_rho(table, metric),
        "trajectory_late_early": " ".join(
            filter(None, [describe_late_early(ratios, metric), describe_equal_steps(table, metric)])
        ),
    }
    return charts, notes
