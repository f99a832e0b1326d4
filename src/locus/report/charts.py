"""Altair charts of the layer profiles. Each function returns {figure name: chart}."""

from __future__ import annotations

import altair as alt
import pandas as pd

from locus.core.ranking import BAND_Z, banded_profiles
from locus.core.stats import LABELS, PER_LR, STATISTICS
from locus.params import lr_label

WIDTH, HEIGHT = 520, 260
# What every shaded band is (locus.core.ranking.seed_band): the margin the findings test peaks against.
BAND_NOTE = f"band: seed mean ± {BAND_Z:g} s.e."


def with_band(base: alt.Chart, line: alt.Chart, df: pd.DataFrame) -> alt.Chart:
    """`line` over its shaded seed band (the low..high columns of a banded_profiles table `df`),
    or `line` alone when no profile in `df` has two seeds."""
    return base.mark_area(opacity=0.2).encode(y="low:Q", y2="high:Q") + line if df.seeds.max() > 1 else line


def band_tooltip(*ids: str, extra=()) -> list:
    """A banded profile point's tooltip: what identifies it, the seed mean with its seed band, the seeds."""
    return [*ids, *(alt.Tooltip(f"{c}:Q", format=".3e") for c in ("value", "low", "high")), "seeds", *extra]


def cross_domain(layers: pd.DataFrame, metric: str) -> dict[str, alt.Chart]:
    """Seed figure 1: for each LR, the metric by layer with one line per domain (seed band if >1 seed);
    raw mean |Δ| gets the Adam-aware mean |Δ| ÷ Σ lr_t beside it when the cells carry it."""
    charts = profiles(layers, metric)
    if metric == "mean_abs" and PER_LR in layers:
        beside = profiles(layers, PER_LR)
        charts = {name: alt.hconcat(chart, beside[name]) for name, chart in charts.items()}
    return charts


def profiles(layers: pd.DataFrame, metric: str, name: str = "cross_domain", width: int = WIDTH) -> dict[str, alt.Chart]:
    """Per LR ("{name}_lr=…"): the metric by layer, one line per domain, with the seed band."""
    charts = {}
    summary = banded_profiles(layers, metric)
    for lr, df in summary.groupby("lr"):
        base = alt.Chart(df).encode(
            x=alt.X("layer:Q", title="layer", scale=alt.Scale(domain=[0, int(layers.layer.max())])),
            color=alt.Color("domain:N", title="domain", legend=alt.Legend(symbolOpacity=1)),
        )
        line = base.mark_line(point=True).encode(
            y=alt.Y("value:Q", title=LABELS[metric], scale=alt.Scale(zero=False)),
            tooltip=band_tooltip("domain", "layer"),
        )
        charts[f"{name}_lr={lr_label(lr)}"] = with_band(base, line, df).properties(
            width=width if metric != PER_LR else width // 2 + 60,
            height=HEIGHT,
            title=f"{LABELS[metric]} by layer, all domains, LR = {lr_label(lr)}"
            + (f" ({BAND_NOTE})" if df["seeds"].max() > 1 else ""),
        )
    return charts


def per_domain(layers: pd.DataFrame) -> dict[str, alt.Chart]:
    """Seed figure 2: for each domain and LR, the four statistics by layer (independent scales), with seed bands."""
    charts = {}
    long = layers.melt(
        id_vars=["domain", "lr", "seed", "layer"], value_vars=list(STATISTICS), var_name="statistic", value_name="value"
    )
    long["statistic"] = long["statistic"].map(LABELS)
    banded = banded_profiles(long, "value", by=("domain", "lr", "statistic"))
    for (domain, lr), df in banded.groupby(["domain", "lr"]):
        base = alt.Chart().encode(x=alt.X("layer:Q"))
        line = base.mark_line(point=True).encode(
            y=alt.Y("value:Q", title=None, scale=alt.Scale(zero=False)),
            tooltip=band_tooltip("statistic", "layer"),
        )
        chart = (
            alt.layer(with_band(base, line, df), data=df)
            .properties(width=250, height=150)
            .facet(facet=alt.Facet("statistic:N", title=None, sort=[LABELS[s] for s in STATISTICS]), columns=2)
            .resolve_scale(y="independent")
            .properties(
                title=f"{domain}, LR = {lr_label(lr)}: weight change across layers"
                + (f" ({BAND_NOTE})" if df.seeds.max() > 1 else "")
            )
        )
        charts[f"domain_{domain}_lr={lr_label(lr)}"] = chart
    return charts


def module_heatmap(modules: pd.DataFrame, metric: str) -> dict[str, alt.Chart]:
    """Layer × module heatmap of the metric, one panel per (domain, LR), seeds averaged."""
    df = modules.groupby(["domain", "lr", "layer", "module"], as_index=False)[metric].mean()
    df["lr"] = df["lr"].map(lr_label)
    chart = (
        alt.Chart(df)
        .mark_rect()
        .encode(
            x=alt.X("layer:O"),
            y=alt.Y("module:N", title=None),
            color=alt.Color(f"{metric}:Q", title=LABELS[metric], scale=alt.Scale(type="log", scheme="viridis")),
            tooltip=["domain", "lr", "layer", "module", alt.Tooltip(f"{metric}:Q", format=".3e")],
        )
        .properties(width=380, height=110)
        .facet(row=alt.Row("domain:N"), column=alt.Column("lr:N", title="LR"))
        .properties(title=f"{LABELS[metric]} by layer and module")
    )
    return {"module_heatmap": chart}


EXPLORER_METRICS = [
    "mean_abs",
    "mean_abs_per_lr",
    "rel_fro",
    "fro",
    "attention_share",
    "var_abs",
    "rep_change_local",
    "rep_change",
]


def explorer(layers: pd.DataFrame, metrics: dict) -> dict[str, alt.Chart]:
    """One interactive layer-profile explorer (works offline, no server): choose the metric and the
    LR from dropdowns, click legend entries to show or hide domains; the seed band
    (locus.core.ranking.seed_band) is shaded and every point has a tooltip (layer, value, the band's
    low and high, seeds, steps).
    `metrics` maps (domain, lr, seed) to that cell's metrics.json, for the steps in the tooltip."""
    names = [m for m in EXPLORER_METRICS if m in layers]
    long = layers.melt(id_vars=["domain", "lr", "seed", "layer"], value_vars=names, var_name="metric")
    long["steps"] = [
        metrics.get((d, lr, s), {}).get("optimizer_steps") for d, lr, s in zip(long.domain, long.lr, long.seed)
    ]
    steps = long.groupby(["metric", "domain", "lr", "layer"])["steps"].max().reset_index()
    df = banded_profiles(long, "value", by=("metric", "domain", "lr")).merge(steps, how="left")
    df["metric"] = df["metric"].map(LABELS)
    df["lr"] = df["lr"].map(lr_label)
    metric = alt.param(
        name="metric",
        value=LABELS[names[0]],
        bind=alt.binding_select(options=[LABELS[m] for m in names], name="metric "),
    )
    lrs = sorted(df["lr"].unique(), key=float)
    lr = alt.param(name="lr", value=lrs[0], bind=alt.binding_select(options=lrs, name="LR "))
    shown = alt.selection_point(fields=["domain"], bind="legend")
    base = (
        alt.Chart(df)
        .transform_filter((alt.datum.metric == metric) & (alt.datum.lr == lr))
        .encode(
            x=alt.X("layer:Q", title="layer"),
            color=alt.Color("domain:N", title="domain (click to toggle)", legend=alt.Legend(symbolOpacity=1)),
        )
    )
    # An opacity encoding overrides the mark's, so the band's faintness is in its own condition.
    band = base.mark_area().encode(
        y="low:Q", y2="high:Q", opacity=alt.condition(shown, alt.value(0.2), alt.value(0.02))
    )
    line = base.mark_line(point=True).encode(
        y=alt.Y("value:Q", title="value (the chosen metric)", scale=alt.Scale(zero=False)),
        opacity=alt.condition(shown, alt.value(1.0), alt.value(0.08)),
        tooltip=band_tooltip("domain", "lr", "layer", extra=["steps"]),
    )
    chart = (
        (band + line)
        .add_params(metric, lr, shown)
        .properties(width=WIDTH + 120, height=HEIGHT + 60, title=f"Layer-profile explorer ({BAND_NOTE})")
    )
    return {"explorer": chart}
