"""Charts and plain-language findings for the effective update ΔW = s·B·A (locus.core.effective).

Input: modules.parquet rows (domain, lr, seed, layer, block, module, fro, rel_fro, …; w0_fro when
present, else ‖W₀‖_F = fro/rel_fro) and optionally a similarity table (locus.core.similarity).
Per layer, ‖ΔW‖_F = √Σ_m‖ΔW_m‖²_F and the relative change is √Σ_m‖ΔW_m‖²_F / √Σ_m‖W₀_m‖²_F — the
change of the layer's stacked adapted weights, so big and small matrices weigh by their size.
Every function returns {figure name: chart}; all names start with "effective_".
"""

from __future__ import annotations

import altair as alt
import pandas as pd

from locus.core.effective import layer_effective
from locus.core.ranking import banded_profiles, profile_shape
from locus.core.stats import LABELS
from locus.params import lr_label
from locus.report.charts import BAND_NOTE, band_tooltip, module_heatmap, with_band
from locus.report.profiles import describe_profile, shape_words
from locus.report.words import ONE_SEED

W, H = 400, 240


def banded_profile(df: pd.DataFrame, metric: str, title: str) -> alt.Chart:
    """One line per domain of a banded_profiles table (locus.core.ranking), the seed band shaded."""
    base = alt.Chart(df).encode(x=alt.X("layer:Q", title="layer"), color=alt.Color("domain:N"))
    line = base.mark_line(point=True).encode(
        y=alt.Y("value:Q", title=LABELS[metric], scale=alt.Scale(zero=False)),
        tooltip=band_tooltip("domain", "layer"),
    )
    return with_band(base, line, df).properties(width=W, height=H, title=title)


def profiles(layers: pd.DataFrame) -> dict[str, alt.Chart]:
    """Per LR: ‖ΔW‖_F/‖W₀‖_F by layer (one line per domain) beside raw ‖ΔW‖_F, with seed bands."""
    rel, raw = banded_profiles(layers, "rel_fro"), banded_profiles(layers, "fro")
    charts = {}
    for lr in sorted(layers.lr.unique()):
        seeds = int(layers[layers.lr == lr].seed.nunique())
        note = f" ({BAND_NOTE}, {seeds} seeds)" if seeds > 1 else ""
        charts[f"effective_profile_lr={lr_label(lr)}"] = alt.hconcat(
            banded_profile(rel[rel.lr == lr], "rel_fro", f"size-normalised ‖ΔW‖_F/‖W₀‖_F, LR {lr_label(lr)}{note}"),
            banded_profile(raw[raw.lr == lr], "fro", f"raw ‖ΔW‖_F, LR {lr_label(lr)}"),
        )
    return charts


def heatmap(modules: pd.DataFrame) -> dict[str, alt.Chart]:
    """Layer × module heatmap of ‖ΔW‖_F/‖W₀‖_F, one panel per (domain, LR), seeds averaged (log colour)."""
    return {"effective_heatmap": module_heatmap(modules, "rel_fro")["module_heatmap"]}


def attention_share(layers: pd.DataFrame) -> dict[str, alt.Chart]:
    """Per LR: attention's share of the layer's ‖ΔW‖²_F by layer; dashed: its share of ‖W₀‖²_F (size alone)."""
    charts = {}
    for lr in sorted(layers.lr.unique()):
        df = banded_profiles(layers[layers.lr == lr], "attention_share")
        ref = layers[layers.lr == lr].groupby("layer", as_index=False)["attention_w0_share"].mean()
        line = banded_profile(df, "attention_share", f"attention vs MLP, LR {lr_label(lr)}")
        rule = (
            alt.Chart(ref)
            .mark_line(strokeDash=[4, 4], color="gray")
            .encode(
                x="layer:Q",
                y=alt.Y("attention_w0_share:Q", scale=alt.Scale(domain=[0, 1])),
                tooltip=[alt.Tooltip("attention_w0_share:Q", title="share of ‖W₀‖²_F", format=".2f")],
            )
        )
        charts[f"effective_attention_lr={lr_label(lr)}"] = (line + rule).properties(width=W, height=H)
    return charts


def similarity_matrix(matrix: pd.DataFrame) -> dict[str, alt.Chart]:
    """Per LR: domain × domain mean φ (locus.core.similarity.domain_matrix output), diagonal = seed vs seed."""
    charts = {}
    for lr, df in matrix.groupby("lr"):
        base = alt.Chart(df).encode(x=alt.X("domain_a:N", title=None), y=alt.Y("domain_b:N", title=None))
        rect = base.mark_rect().encode(
            color=alt.Color("phi:Q", title="mean φ", scale=alt.Scale(domain=[0, 1], scheme="blues")),
            tooltip=["domain_a", "domain_b", "diag", alt.Tooltip("phi:Q", format=".3f")],
        )
        text = base.mark_text().encode(text=alt.Text("phi:Q", format=".2f"))
        charts[f"effective_similarity_lr={lr_label(lr)}"] = (rect + text).properties(
            width=260, height=260, title=f"subspace similarity φ of ΔW (mean over layers), LR {lr_label(lr)}"
        )
    return charts


# ---------------------------------------------------------------- plain-language findings


def describe_modules(modules: pd.DataFrame, lr: float) -> str:
    """Which module type changed most and least (relative), and whether every seed says so."""
    cell = modules[modules.lr == lr]
    m = cell.groupby("module")["rel_fro"].mean().sort_values()
    top, bottom = m.index[-1], m.index[0]
    text = (
        f"LR {lr_label(lr)}: relative change is largest in {top} ({m.iloc[-1]:.2e}) and smallest in "
        f"{bottom} ({m.iloc[0]:.2e}), {m.iloc[-1] / m.iloc[0]:.2g}× apart (mean over layers, domains, seeds)"
    )
    by_seed = cell.groupby(["seed", "module"])["rel_fro"].mean().unstack()
    if len(by_seed) < 2:
        return f"{text}; {ONE_SEED}."
    same = (by_seed.idxmax(axis=1) == top).all() and (by_seed.idxmin(axis=1) == bottom).all()
    return f"{text}; {'the same two in every seed' if same else 'not the same two in every seed: seed noise'}."


def describe_attention(layers: pd.DataFrame, lr: float) -> str:
    """Attention's share of ‖ΔW‖²_F against its share of ‖W₀‖²_F, with the spread over seeds, and
    where by layer it is higher or lower beyond the seed band (report.profiles.shape_words)."""
    cell = layers[layers.lr == lr]
    share, ref = cell.attention_share.mean(), cell.attention_w0_share.mean()

    def side(x: float) -> str:
        return "about" if abs(x - ref) < 0.02 else "more than" if x > ref else "less than"

    verdict = side(share)
    per_seed = cell.groupby("seed").attention_share.mean()
    if len(per_seed) < 2:
        noise = f" ({ONE_SEED})"
    else:
        every = all(side(x) == verdict for x in per_seed)
        lo, hi = f"{per_seed.min():.0%}", f"{per_seed.max():.0%}"
        span = lo if lo == hi else f"{lo}–{hi}"
        noise = f", {span} across seeds ({'so in every seed' if every else 'not in every seed'})"
    by_layer = profile_shape(cell.groupby(["layer", "seed"]).attention_share.mean().unstack("seed"))
    return (
        f"LR {lr_label(lr)}: attention takes {share:.0%} of ‖ΔW‖²_F on average, {verdict} its {ref:.0%} share "
        f"of ‖W₀‖²_F{noise}; by layer {shape_words('its share is', by_layer, untested='')}."
    )


def describe_similarity(matrix: pd.DataFrame, lr: float, baseline: float | None = None) -> str:
    df = matrix[(matrix.lr == lr)]
    cross = df[df.diag == "domain vs domain"]
    if cross.empty:
        return f"LR {lr_label(lr)}: one domain only, no domain similarity."
    cross = cross[cross.domain_a < cross.domain_b].sort_values("phi")
    hi, lo = cross.iloc[-1], cross.iloc[0]
    if len(cross) == 1:  # one pair: no "most" and "least"
        text = f"LR {lr_label(lr)}: {hi.domain_a} and {hi.domain_b} share ΔW's top directions with φ = {hi.phi:.2f}"
    else:
        text = (
            f"LR {lr_label(lr)}: domains share ΔW's top directions most for {hi.domain_a}–{hi.domain_b} "
            f"(φ = {hi.phi:.2f}) and least for {lo.domain_a}–{lo.domain_b} (φ = {lo.phi:.2f}); "
            f"mean φ {cross.phi.mean():.2f}"
        )
    text += f" vs {baseline:.3f} for random subspaces" if baseline is not None else ""
    seeds = df[df.diag == "seed vs seed"]
    if not seeds.empty:
        text += f"; same domain, other seed: mean φ {seeds.phi.mean():.2f} (the noise floor)"
    else:
        text += f"; {ONE_SEED}"
    return text + "."


def summaries(modules: pd.DataFrame, similarity: pd.DataFrame | None = None) -> dict[str, str]:
    """{figure name: sentence computed from the data} for every figure of `figures`."""
    layers, notes = layer_effective(modules), {}
    matrix, baseline = _matrix(similarity)
    for lr in sorted(layers.lr.unique()):
        lab = lr_label(lr)
        notes[f"effective_profile_lr={lab}"] = describe_profile(layers, lr)
        notes[f"effective_attention_lr={lab}"] = describe_attention(layers, lr)
        if matrix is not None and (matrix.lr == lr).any():
            notes[f"effective_similarity_lr={lab}"] = describe_similarity(matrix, lr, baseline)
    notes["effective_heatmap"] = " ".join(describe_modules(modules, lr) for lr in sorted(modules.lr.unique()))
    return notes


def _matrix(similarity: pd.DataFrame | None):
    if similarity is None or similarity.empty:
        return None, None
    from locus.core.similarity import domain_matrix

    return domain_matrix(similarity), float(similarity.baseline.mean())


def figures(
    modules: pd.DataFrame, similarity: pd.DataFrame | None = None
) -> tuple[dict[str, alt.Chart], dict[str, str]]:
    """Every effective-update figure and its sentence: (charts, notes), both keyed by figure name."""
    layers = layer_effective(modules)
    charts = {**profiles(layers), **heatmap(modules), **attention_share(layers)}
    matrix, _ = _matrix(similarity)
    if matrix is not None:
        charts.update(similarity_matrix(matrix))
    return charts, summaries(modules, similarity)
