"""The report's methods section (locus.analysis.methods tables): where each fine-tuning method writes.

Charts: each method's layer profile of ‖ΔW‖_F/‖W₀‖_F (weight-space methods) and of the representation
change (every adapter method), each seed's profile divided by its mean over layers so shapes compare
across methods whose sizes differ by orders of magnitude, with the seed band; the ρ between every two
methods' maps; what each method costs and gains. Notes: computed sentences, every comparison read
against seed noise (a cross-method ρ against the two methods' own seed-to-seed ρ).
"""

from __future__ import annotations

from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd

from locus import io
from locus.analysis.methods import FULL_FT
from locus.core.ranking import banded_profiles, late_early_ratio, profile_shape
from locus.params import lr_label
from locus.report.charts import BAND_NOTE, with_band
from locus.report.profiles import shape_words

TITLES = [
    ("Methods: where each method changes the weights (‖ΔW‖_F/‖W₀‖_F, shape)", "methods_weights"),
    ("Methods: where each method changes the representation (1 − CKA)", "methods_rep"),
    ("Methods: do the maps agree? (Spearman ρ, same metric on both sides)", "methods_rho"),
    ("Methods: cost and effect", "methods_cost"),
]
SCALE = {
    "rel_fro": "‖ΔW‖_F/‖W₀‖_F",
    "added_fro": "‖ΔP‖_F (prefix)",
    "rep_change": "1 − CKA",
    "rep_change_local": "layer-alone 1 − CKA",
}


def label(method: str, lr: float) -> str:
    return f"{method} @ {lr_label(lr)}"


def _normalised(layers: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Seed-mean profile per (domain, method, lr) of each seed's profile ÷ its mean over layers, banded."""
    d = layers.dropna(subset=[metric])
    d = d.assign(value=d[metric] / d.groupby(["method", "domain", "lr", "seed"])[metric].transform("mean"))
    d["series"] = [label(m, lr) for m, lr in zip(d.method, d.lr)]
    return banded_profiles(d, "value", by=("domain", "series"))


def profile_chart(banded: pd.DataFrame, title: str) -> alt.Chart:
    base = alt.Chart(banded).encode(x=alt.X("layer:Q", title="layer"), color=alt.Color("series:N", title="method @ LR"))
    line = base.mark_line(point=True).encode(
        y=alt.Y("value:Q", title="÷ the profile's mean over layers"),
        tooltip=["series", "layer", alt.Tooltip("value:Q", format=".3f")],
    )
    return with_band(base, line, banded).properties(width=520, height=260, title=title)


def rho_chart(summary: pd.DataFrame, metric: str) -> alt.Chart:
    base = alt.Chart(summary).encode(x=alt.X("a:N", title=None), y=alt.Y("b:N", title=None))
    rect = base.mark_rect().encode(
        color=alt.Color("rho:Q", title="ρ", scale=alt.Scale(scheme="blueorange", domain=[-1, 1])),
        tooltip=["a", "b", alt.Tooltip("rho:Q", format=".2f"), alt.Tooltip("sd:Q", format=".2f"), "n"],
    )
    text = base.mark_text(fontSize=9).encode(text=alt.Text("rho:Q", format=".2f"))
    return (rect + text).properties(
        width=420, height=420, title=f"mean ρ of the {SCALE[metric]} maps (diagonal: seed to seed)"
    )


def rho_summary(rho: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Mean, s.d. and count of ρ per (a, b) over domains and seeds (a = b: the seed-to-seed ρ)."""
    r = rho[rho.metric == metric]
    r = r.assign(
        a=[label(m, lr) for m, lr in zip(r.method_a, r.lr_a)], b=[label(m, lr) for m, lr in zip(r.method_b, r.lr_b)]
    )
    g = r.groupby(["a", "b"]).rho
    return pd.DataFrame({"rho": g.mean(), "sd": g.std(ddof=1), "n": g.size()}).reset_index()


def agreement_words(summary: pd.DataFrame, a: str, b: str) -> str:
    """ρ of two maps read against each one's seed-to-seed ρ: as close as two seeds, further apart, or borderline."""
    pair = summary[((summary.a == a) & (summary.b == b)) | ((summary.a == b) & (summary.b == a))]
    own = [summary[(summary.a == x) & (summary.b == x)].rho for x in (a, b)]
    if pair.empty or any(o.empty for o in own):
        return ""
    rho, sd, n = pair.rho.iloc[0], pair.sd.iloc[0], int(pair.n.iloc[0])
    floor = min(float(o.iloc[0]) for o in own)
    if rho >= floor:
        verdict = "as close as two seeds of one method"
    elif rho + (0 if np.isnan(sd) else sd) < floor:
        verdict = "further apart than two seeds of either"
    else:
        verdict = "borderline: below the seeds' ρ by less than its own s.d."
    spread = f" ± {sd:.2f}" if n > 1 else ""
    return f"{b} vs {a}: ρ = {rho:.2f}{spread} (n = {n}; seed to seed {own[0].iloc[0]:.2f} and {own[1].iloc[0]:.2f}) — {verdict}."


def profile_words(layers: pd.DataFrame, domain: str, metric: str) -> str:
    """Per method and LR: late/early ratio (mean ± s.d. over seeds) and the profile's verdict."""
    out = []
    d = layers[(layers.domain == domain)].dropna(subset=[metric])
    for (method, lr), m in d.groupby(["method", "lr"], sort=False):
        per_seed = m.pivot_table(index="layer", columns="seed", values=metric)
        ratios = [late_early_ratio(per_seed[s]) for s in per_seed]
        sd = f" ± {np.std(ratios, ddof=1):.2f}" if len(ratios) > 1 else ""
        out.append(f"{shape_words(label(method, lr), profile_shape(per_seed))}, late/early {np.mean(ratios):.2f}{sd}")
    return f"{domain}, {SCALE[metric]}: " + "; ".join(out) + "." if out else ""


def cost_chart(runs: pd.DataFrame) -> alt.Chart:
    r = runs.assign(
        series=[label(m, lr) for m, lr in zip(runs.method, runs.lr)], gain=runs.eval_loss_before - runs.eval_loss_after
    )
    g = r.groupby(["domain", "series"], as_index=False).agg(
        gain=("gain", "mean"), params=("trainable_parameters", "first")
    )
    params = (
        alt.Chart(g.drop_duplicates("series"))
        .mark_bar()
        .encode(
            x=alt.X("params:Q", scale=alt.Scale(type="log"), title="trainable parameters (log)"),
            y=alt.Y("series:N", title=None),
        )
    )
    gain = (
        alt.Chart(g)
        .mark_bar()
        .encode(
            x=alt.X("gain:Q", title="eval loss before − after (seed mean)"),
            y=alt.Y("series:N", title=None),
            yOffset="domain:N",
            color="domain:N",
        )
    )
    return alt.hconcat(params.properties(width=240, height=300), gain.properties(width=280, height=300))


def cost_words(runs: pd.DataFrame, evaluation: pd.DataFrame | None = None) -> str:
    """Per method and LR: trainable parameters and the in-domain eval-loss gain; with the held-out
    evaluation, also the mean change on the other domains' splits against the base model (forgetting
    when positive), seed mean ± s.d."""
    out = []
    for (method, lr), r in runs.groupby(["method", "lr"], sort=False):
        gain = (r.eval_loss_before - r.eval_loss_after).groupby(r.domain).mean()
        per = ", ".join(f"{d} {g:+.3f}" for d, g in gain.items())
        words = (
            f"{label(method, lr)}: {int(r.trainable_parameters.iloc[0]):,} trainable parameters, eval-loss gain {per}"
        )
        if evaluation is not None:
            e = evaluation[(evaluation.method == method) & (evaluation.lr == lr) & ~evaluation.in_domain]
            if len(e):
                per_seed = e.groupby("seed").delta_loss.mean()
                sd = f" ± {per_seed.std(ddof=1):.3f}" if len(per_seed) > 1 else ""
                words += f", off-domain Δ eval loss vs the base {per_seed.mean():+.3f}{sd}"
        out.append(words)
    return "; ".join(out) + (
        ". Gain = eval loss before − after on the cell's own eval split, seed mean (before: the model as "
        "initialised — the base for LoRA and IA³, whose initial adapters change nothing)."
    )


def sections(tables_dir, params):
    """(figures, notes, [(title, prefix)]) of the methods section; empty unless `methods` has several."""
    tables_dir = Path(tables_dir)
    if len(params.methods) < 2:
        return {}, {}, []
    layers, runs, rho = (io.read_parquet(tables_dir / f"methods_{n}.parquet") for n in ("layers", "runs", "rho"))
    figures, notes = {}, {}
    for domain in layers.domain.unique():
        d = layers[layers.domain == domain]
        figures[f"methods_weights_{domain}"] = profile_chart(
            _normalised(d, "rel_fro"), f"{domain}: ‖ΔW‖_F/‖W₀‖_F by layer, shape"
        )
        added = profile_words(layers, domain, "added_fro")  # prefix tuning: the change of what it adds
        notes[f"methods_weights_{domain}"] = " ".join(
            w
            for w in (
                profile_words(layers, domain, "rel_fro"),
                added and f"Prefix tuning changes no weight; {added}",
                BAND_NOTE,
            )
            if w
        )
        figures[f"methods_rep_{domain}"] = profile_chart(
            _normalised(d, "rep_change"), f"{domain}: 1 − CKA by layer, shape"
        )
        notes[f"methods_rep_{domain}"] = profile_words(layers, domain, "rep_change")
    reference = [label(params.method, lr) for lr in params.for_method(params.method).grid.learning_rates]
    for metric in ("rel_fro", "rep_change"):
        summary = rho_summary(rho, metric)
        figures[f"methods_rho_{metric}"] = rho_chart(summary, metric)
        series = sorted(set(summary.a) | set(summary.b))
        words = [agreement_words(summary, ref, s) for ref in reference for s in series if s not in reference]
        if metric == "rel_fro":
            full = [s for s in series if s.startswith(FULL_FT)]
            words += [agreement_words(summary, f, s) for f in full for s in series if not s.startswith(FULL_FT)]
        notes[f"methods_rho_{metric}"] = (
            f"{SCALE[metric]} maps, ρ over the layers, mean over domains and seeds: " + " ".join(w for w in words if w)
        )
    figures["methods_cost"] = cost_chart(runs)
    evaluation = io.read_parquet(tables_dir / "methods_evaluation.parquet") if params.evaluation.domains else None
    notes["methods_cost"] = cost_words(runs, evaluation)
    return figures, notes, [t for t in TITLES if any(n.startswith(t[1]) for n in figures)]
