"""Report sections of the optional experiments (locus.analysis.experiments tables): charts and computed notes.

`sections(tables_dir, params, layers, modules)` returns (figures, notes, section list) to merge into
the report; everything is empty when the experiments are off, so the default report is unchanged.
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import pandas as pd

from locus import io
from locus.analysis import evaluation, full_ft
from locus.core.ranking import banded_profiles, critical_rho, profile_shape
from locus.core.stats import LABELS
from locus.params import lr_label
from locus.report.charts import BAND_NOTE, band_tooltip, with_band
from locus.report.profiles import shape_words

TITLES = [
    ("Held-out evaluation: cross-domain change of eval loss", "evaluation_"),
    ("Full fine-tuning vs LoRA: layer profiles", "full_ft_profile"),
    ("Full fine-tuning vs LoRA: rank correlation of the layer maps", "full_ft_rho"),
    ("Full fine-tuning: rank of ΔW", "full_ft_rank"),
]


def evaluation_charts(table: pd.DataFrame) -> dict[str, alt.Chart]:
    """Per LoRA LR: train × eval domain heatmap of Δloss (blue = lower loss) beside in- vs off-domain bars."""
    charts = {}
    for lr, t in table.groupby("lr"):
        cell = t.groupby(["domain", "eval_domain"], as_index=False)[
            ["delta_loss", "delta_accuracy", "loss_before"]
        ].mean()
        lim = float(cell.delta_loss.abs().max()) or 1.0
        base = alt.Chart(cell).encode(
            x=alt.X("eval_domain:N", title="evaluated on"), y=alt.Y("domain:N", title="trained on")
        )
        rect = base.mark_rect().encode(
            color=alt.Color(
                "delta_loss:Q", title="Δ loss", scale=alt.Scale(scheme="redblue", reverse=True, domain=[-lim, lim])
            ),
            tooltip=[
                "domain",
                "eval_domain",
                alt.Tooltip("delta_loss:Q", format="+.3f"),
                alt.Tooltip("delta_accuracy:Q", format="+.1%"),
                alt.Tooltip("loss_before:Q", format=".3f"),
            ],
        )
        text = base.mark_text().encode(text=alt.Text("delta_loss:Q", format="+.2f"))
        gf = evaluation.gain_and_forgetting(t).melt(id_vars=["domain", "lr"], var_name="where", value_name="delta_loss")
        bars = (
            alt.Chart(gf.dropna())
            .mark_bar()
            .encode(
                x=alt.X("delta_loss:Q", title="Δ eval loss (after − before)"),
                y=alt.Y("domain:N", title=None),
                color=alt.Color("where:N", title=None),
                yOffset="where:N",
                tooltip=["domain", "where", alt.Tooltip("delta_loss:Q", format="+.3f")],
            )
        )
        charts[f"evaluation_lr={lr_label(lr)}"] = alt.hconcat(
            (rect + text).properties(width=260, height=260, title=f"Δ eval loss, LoRA LR {lr_label(lr)}"),
            bars.properties(width=260, height=260, title="in-domain gain vs off-domain change"),
        )
    return charts


def _normalised(df: pd.DataFrame, metric: str, label: str) -> pd.DataFrame:
    """Each seed's profile of `metric` divided by its mean over layers (shapes compare, scales do
    not), banded over seeds (locus.core.ranking.banded_profiles): one series per LR."""
    rel = df.assign(value=df[metric] / df.groupby(["lr", "seed"])[metric].transform("mean"))
    rel["series"] = [f"{label}, LR {lr_label(lr)}" for lr in rel.lr]
    return banded_profiles(rel, "value", by=("series",))


def full_ft_charts(lora_layers, ft_layers, ft_modules, lora_modules, rho) -> dict[str, alt.Chart]:
    charts = {}
    for domain, ft in ft_layers.groupby("domain"):
        lora = lora_layers[lora_layers.domain == domain]
        df = pd.concat(
            [
                _normalised(ft, "rel_fro", "full FT ‖ΔW‖_F/‖W₀‖_F"),
                _normalised(lora, "rel_fro", "LoRA ‖ΔW‖_F/‖W₀‖_F"),
                _normalised(ft, "mean_abs", "full FT mean |ΔW|"),
                _normalised(lora, "mean_abs", "LoRA mean |Δ|"),
            ]
        )
        base = alt.Chart(df).encode(
            x="layer:Q",
            color=alt.Color(
                "series:N",
                title=None,
                legend=alt.Legend(orient="bottom", columns=2, labelLimit=400, symbolOpacity=1),
            ),
        )
        line = base.mark_line(point=True).encode(
            y=alt.Y("value:Q", title="profile / its mean over layers", scale=alt.Scale(zero=False)),
            tooltip=band_tooltip("series", "layer"),
        )
        banded = df.seeds.max() > 1
        charts[f"full_ft_profile_{domain}"] = with_band(base, line, df).properties(
            width=520,
            height=240,
            title=f"{domain}: where full FT and LoRA change the model (seed mean{', ' + BAND_NOTE if banded else ''})",
        )
    s = full_ft.rho_summary(rho)
    s = s.assign(
        pair=[f"{r.domain}, LoRA {lr_label(r.lora_lr)} / FT {lr_label(r.ft_lr)}" for r in s.itertuples()],
        metric=s.lora_metric.map(LABELS),
        sd=s["sd"].fillna(0.0),
    )
    s = s.assign(low=s["mean"] - s.sd, high=s["mean"] + s.sd)
    base = alt.Chart(s).encode(
        y=alt.Y("pair:N", title=None),
        color=alt.Color("metric:N", title="metric (LoRA and full FT alike)"),
        yOffset="metric:N",
    )
    crit = critical_rho(int(s.n_layers.iloc[0]))
    refs = (
        alt.Chart(pd.DataFrame({"x": [0.0, crit, full_ft.TRACKS]}))
        .mark_rule(strokeDash=[4, 4], color="gray")
        .encode(x="x:Q")
    )
    charts["full_ft_rho"] = (
        base.mark_rule().encode(
            x=alt.X("low:Q", title="Spearman ρ with full FT (mean ± s.d. over seeds)", scale=alt.Scale(domain=[-1, 1])),
            x2="high:Q",
        )
        + base.mark_point(filled=True, size=60).encode(
            x="mean:Q",
            tooltip=["pair", "metric", alt.Tooltip("mean:Q", format=".2f"), alt.Tooltip("sd:Q", format=".2f"), "n"],
        )
        + refs
    ).properties(
        width=420,
        height=max(120, 36 * len(s) // 2),
        title=f"dashed: 0, significance ({crit:.2f}), 'tracks' ({full_ft.TRACKS})",
    )
    keys = ft_modules[["domain", "seed"]].drop_duplicates()
    ranks = pd.concat(
        [
            ft_modules.groupby("module", as_index=False).effective_rank.mean().assign(update="full FT, effective rank"),
            ft_modules.groupby("module", as_index=False)
            .rank90.mean()
            .rename(columns={"rank90": "effective_rank"})
            .assign(update="full FT, rank for 90% energy"),
            lora_modules.merge(keys, on=["domain", "seed"])
            .groupby("module", as_index=False)
            .effective_rank.mean()
            .assign(update="LoRA, effective rank"),
        ]
    )
    # points, not bars: a bar on a log axis has no baseline to start from
    charts["full_ft_rank"] = (
        alt.Chart(ranks)
        .mark_point(filled=True, size=90)
        .encode(
            x=alt.X(
                "effective_rank:Q", title="rank (mean over layers, domains, LRs, seeds)", scale=alt.Scale(type="log")
            ),
            y=alt.Y("module:N", title=None),
            color=alt.Color("update:N", title=None, legend=alt.Legend(labelLimit=300)),
            shape="update:N",
            tooltip=["module", "update", alt.Tooltip("effective_rank:Q", format=".1f")],
        )
        .properties(width=420, height=260, title="rank of ΔW: full fine-tuning vs LoRA")
    )
    return charts


def describe_full_ft_profiles(ft_layers: pd.DataFrame, lora_layers: pd.DataFrame, domain: str) -> str:
    """The shape of full FT's and LoRA's ‖ΔW‖_F/‖W₀‖_F profiles of one domain, each tested against
    its own seed band (their rank correlations are the next section's note)."""
    ft = ft_layers[ft_layers.domain == domain]
    parts = [
        shape_words(
            f"full FT (LR {lr_label(lr)})",
            profile_shape(g.pivot_table(index="layer", columns="seed", values="rel_fro")),
        )
        for lr, g in ft.groupby("lr")
    ]
    lora = lora_layers[lora_layers.domain == domain]
    parts += [
        shape_words(
            f"LoRA (LR {lr_label(lr)})", profile_shape(g.pivot_table(index="layer", columns="seed", values="rel_fro"))
        )
        for lr, g in lora.groupby("lr")
    ]
    return (
        f"{domain}, ‖ΔW‖_F/‖W₀‖_F by layer: {'; '.join(parts)}. The lines are each profile ÷ its own mean over "
        "layers, so they compare where the update goes, not how large it is."
    )


def sections(tables_dir, params, layers: pd.DataFrame, modules: pd.DataFrame):
    """(figures, notes, [(section title, figure-name prefix)]) for the experiments that are on."""
    tables_dir, figures, notes = Path(tables_dir), {}, {}
    if params.evaluation.domains:
        table = io.read_parquet(tables_dir / "evaluation.parquet")
        figures |= evaluation_charts(table)
        notes |= {f"evaluation_lr={lr_label(lr)}": evaluation.describe(table, lr) for lr in sorted(table.lr.unique())}
    if params.full_ft.domains:
        ft_modules, ft_layers, rho = (
            io.read_parquet(tables_dir / f"full_ft_{n}.parquet") for n in ("modules", "layers", "rho")
        )
        figures |= full_ft_charts(layers, ft_layers, ft_modules, modules, rho)
        summary = full_ft.rho_summary(rho)
        notes["full_ft_rho"] = " ".join(full_ft.describe(summary, m) for m in full_ft.LORA_METRICS)
        notes["full_ft_rank"] = full_ft.describe_rank(ft_modules, modules, params.lora.r)
        for domain in ft_layers.domain.unique():
            notes[f"full_ft_profile_{domain}"] = describe_full_ft_profiles(ft_layers, layers, domain)
    titles = [(t, p) for t, p in TITLES if any(name.startswith(p) for name in figures)]
    return figures, notes, titles
