"""Charts and findings comparing adapters trained elsewhere (`locus external`), side by side.

Input: the per-(adapter, layer) table of `layer_table` and the per-module effective rows with an
`adapter` column. One line (or heatmap row) per adapter; the layer aggregation is the grid's
(locus.core.effective.layer_effective: stacked-weight ‖ΔW‖_F and ‖ΔW‖_F/‖W₀‖_F, attention share) and
the line charts are charts_effective's. Every function returns {figure name: chart}; all names
start with "external_".
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from locus.core.effective import layer_effective
from locus.core.ranking import early_and_late, late_early_ratio, profile_shape
from locus.core.stats import LABELS, STATISTICS
from locus.report.effective import H, W, banded_profile
from locus.report.profiles import shape_words
from locus.report.words import UNTESTED, layer_span, ratio_words, rounds_to_one

# layer_effective groups by the grid's cell columns; an external adapter is one "cell".
_CELL = {"lr": 0.0, "seed": 0}


def layer_table(modules: pd.DataFrame, deltas: pd.DataFrame) -> pd.DataFrame:
    """Per (adapter, layer): effective metrics of the stacked layer, n_modules, and the seed's
    statistics averaged over the layer's lora_B matrices (`{stat}_B`), lora_A matrices (`{stat}_A`,
    NaN without an initial snapshot) and both (`{stat}`, the seed's own layer number; NaN without A)."""
    eff = layer_effective(modules.assign(domain=modules.adapter, **_CELL)).rename(columns={"domain": "adapter"})
    out = eff.drop(columns=list(_CELL)).merge(
        modules.groupby(["adapter", "layer"]).size().rename("n_modules").reset_index()
    )
    stats = list(STATISTICS)
    for matrix in "BA":
        part = deltas[deltas.matrix == matrix].groupby(["adapter", "layer"])[stats].mean()
        out = out.merge(part.add_suffix(f"_{matrix}").reset_index(), on=["adapter", "layer"], how="left")
    both = deltas.groupby(["adapter", "layer"])[stats].mean().reset_index()
    has_a = deltas[deltas.matrix == "A"].groupby("adapter").size().index
    both.loc[~both.adapter.isin(has_a), stats] = float("nan")
    return out.merge(both, on=["adapter", "layer"], how="left")


def _lines(layers: pd.DataFrame, column: str, metric: str, title: str) -> alt.Chart:
    """charts_effective's layer profile of `column` (axis: LABELS[metric]), one line per adapter, no band."""
    value = layers[column]
    df = pd.DataFrame({"domain": layers.adapter, "layer": layers.layer, "value": value, "low": value, "high": value})
    df["seeds"] = 1
    return banded_profile(df, metric, title).encode(color=alt.Color("domain:N", title="adapter"))


def profiles(layers: pd.DataFrame) -> dict[str, alt.Chart]:
    return {
        "external_profile": alt.hconcat(
            _lines(layers, "rel_fro", "rel_fro", "size-normalised ‖ΔW‖_F/‖W₀‖_F"),
            _lines(layers, "fro", "fro", "raw ‖ΔW‖_F"),
        ),
        "external_seed_B": _lines(layers, "mean_abs_B", "mean_abs", "lora_B: mean |Δ_B| = mean |B| (B starts at 0)"),
    }


def heatmap(modules: pd.DataFrame) -> dict[str, alt.Chart]:
    """Layer × module ‖ΔW‖_F/‖W₀‖_F, one row of panels per adapter (log colour)."""
    chart = (
        alt.Chart(modules[["adapter", "layer", "module", "rel_fro"]])
        .mark_rect()
        .encode(
            x=alt.X("layer:O"),
            y=alt.Y("module:N", title=None),
            color=alt.Color("rel_fro:Q", title=LABELS["rel_fro"], scale=alt.Scale(type="log", scheme="viridis")),
            tooltip=["adapter", "layer", "module", alt.Tooltip("rel_fro:Q", format=".3e")],
        )
        .properties(width=380, height=110)
        .facet(row=alt.Row("adapter:N"))
    )
    return {"external_heatmap": chart.properties(title="‖ΔW‖_F / ‖W₀‖_F by layer and module")}


def attention_share(layers: pd.DataFrame) -> dict[str, alt.Chart]:
    """Attention's share of each layer's ‖ΔW‖²_F per adapter; dashed: its share of ‖W₀‖²_F."""
    base = alt.Chart(layers).encode(x=alt.X("layer:Q"), color=alt.Color("adapter:N"))
    line = base.mark_line(point=True).encode(
        y=alt.Y("attention_share:Q", title=LABELS["attention_share"], scale=alt.Scale(domain=[0, 1])),
        tooltip=["adapter", "layer", alt.Tooltip("attention_share:Q", format=".2f")],
    )
    ref = base.mark_line(strokeDash=[4, 4]).encode(
        y="attention_w0_share:Q", tooltip=[alt.Tooltip("attention_w0_share:Q", title="share of ‖W₀‖²_F", format=".2f")]
    )
    return {"external_attention": (line + ref).properties(width=W, height=H, title="attention vs MLP")}


def describe(layers: pd.DataFrame, metric: str = "rel_fro") -> str:
    """Per adapter: flat or where it is highest (report.profiles.shape_words; one adapter has no seeds,
    so no peak is tested against seed noise) and how the last third of the layers compares with the first."""
    parts = []
    for adapter, df in layers.groupby("adapter", sort=False):
        profile = df.set_index("layer")[metric].sort_index()
        early, late = early_and_late(profile.index)
        ratio = late_early_ratio(profile)
        than = "as" if rounds_to_one(ratio) else "than"
        shape = shape_words(f"{adapter}:", profile_shape(profile.to_frame()), untested="")
        parts.append(
            f"{shape}; late layers ({layer_span(late)}) change {ratio_words(ratio)} {than} early ones ({layer_span(early)})"
        )
    return f"{LABELS[metric]} — " + "; ".join(parts) + f" (one adapter each: {UNTESTED})."


def figures(modules: pd.DataFrame, layers: pd.DataFrame) -> tuple[dict[str, alt.Chart], dict[str, str]]:
    charts = {**profiles(layers), **heatmap(modules), **attention_share(layers)}
    return charts, {"external_profile": describe(layers)}
