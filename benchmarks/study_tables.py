"""The numbers docs/findings.md quotes, computed from a finished run's tables (markdown on stdout).

  python benchmarks/study_tables.py --preset study > /tmp/tables.md
  python benchmarks/study_tables.py --tables docs/findings/study   # the committed study's tables.md

1. How stable is each metric's map? Spearman ρ of the layer ranking between seeds (mean over seed
   pairs; locus.core.ranking.seed_stability) per domain × LR, and the profile's verdict (flat or
   peaked beyond the seed band; locus.core.ranking.profile_shape) with its margin (borderline near 1).
2. Layer rankings compared like with like: one seed's map against one seed's map, whether the two
   differ in seed, in domain or in learning rate.
3. Do domains differ beyond seed noise? For each metric and LR, a permutation test over cells: the
   statistic is the between-domain variance of the cells' values (mean over layers: *magnitude*;
   each layer divided by the cell's mean over layers, averaged over layers: *shape*), every
   labelling of the domains within each seed enumerated when they are few (an exact p), else 5,000
   shuffles (locus.core.ranking.domain_test, which the report uses too).
4. Attention vs MLP: attention's share of ‖ΔW‖²_F against its share of ‖W₀‖²_F (both among the
   adapted projections), for LoRA and for full FT; each module's ‖ΔW‖_F/‖W₀‖_F.
5. LoRA vs full fine-tuning (when the run has the arm): Spearman ρ of the layer profiles, the same
   metric on both sides (locus.analysis.full_ft.rho_table).
6. Representation change vs the weight maps: Spearman ρ per cell (locus.report.representation).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from locus import params as params_module
from locus.core.ranking import BORDERLINE, cell_size_and_shape, domain_test, profile_shape
from locus.core.stats import LABELS
from locus.params import lr_label
from locus.report.representation import agreement

METRICS = ["mean_abs", "mean_abs_per_lr", "rel_fro", "fro", "var_abs", "rep_change_local", "rep_change"]


def stability(layers: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for metric in [m for m in METRICS if m in layers]:
        for (domain, lr), g in layers.groupby(["domain", "lr"]):
            shape = profile_shape(g.pivot_table(index="layer", columns="seed", values=metric))
            verdict = (
                "flat"
                if shape["flat"]
                else "peak at " + ",".join(map(str, shape["peak_layers"]))
                if shape["peak_layers"]
                else "dip at " + ",".join(map(str, shape["dip_layers"]))
                if shape["dip_layers"]
                else "not flat (one seed: untested)"
            )
            rows.append(
                {
                    "metric": metric,
                    "cell": f"{domain}@{lr_label(lr)}",
                    "rho": shape["stability"],
                    "spread": shape["spread"],
                    "verdict": verdict,
                    "margin": shape["margin"],
                    "borderline": shape["borderline"],
                }
            )
    return pd.DataFrame(rows)


def domain_differences(layers: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for metric in [m for m in METRICS if m in layers]:
        for lr, g in layers.groupby("lr"):
            size, shape = cell_size_and_shape(g, metric)  # per cell: mean over layers; profile ÷ that mean
            magnitude = size[metric]
            deviation = ((shape - shape.mean()) ** 2).mean(axis=1)  # from the mean shape, per cell
            between, p_mag = domain_test(size)
            within = magnitude.groupby(level="domain").var(ddof=1).mean()
            _, p_shape = domain_test(shape)
            domain_means = magnitude.groupby(level="domain").mean()
            rows.append(
                {
                    "metric": metric,
                    "lr": lr_label(lr),
                    # one-way ANOVA's F of a balanced grid: seeds × variance of the domain means / within
                    "magnitude F": g.seed.nunique() * between / within if within > 0 else np.inf,
                    "magnitude p": p_mag,
                    "shape p": p_shape,
                    "largest/smallest domain mean": domain_means.max() / domain_means.min(),
                    "shape deviation": float(deviation.mean()),
                }
            )
    return pd.DataFrame(rows)


def ranking_agreement(layers: pd.DataFrame) -> pd.DataFrame:
    """Per metric and LR: mean Spearman ρ of layer rankings between two seeds of the same domain,
    between two domains at the same seed, and between the two LRs at the same domain and seed —
    always one seed's map against one seed's map, so the three columns compare like with like.
    Domains (or LRs) differ in *where* only if their ρ is clearly below seed-vs-seed ρ."""
    from itertools import combinations

    from locus.core.ranking import spearman

    rows = []
    for metric in [m for m in METRICS if m in layers]:
        wide = layers.pivot_table(index="layer", columns=["domain", "lr", "seed"], values=metric)
        for lr in sorted(layers.lr.unique()):
            cols = [c for c in wide.columns if c[1] == lr]
            same_domain = [spearman(wide[a], wide[b]) for a, b in combinations(cols, 2) if a[0] == b[0]] or [np.nan]
            same_seed = [spearman(wide[a], wide[b]) for a, b in combinations(cols, 2) if a[2] == b[2]] or [np.nan]
            rows.append(
                {
                    "metric": metric,
                    "lr": lr_label(lr),
                    "seed vs seed (same domain)": np.nanmean(same_domain),
                    "domain vs domain (same seed)": np.nanmean(same_seed),
                }
            )
        lrs = sorted(layers.lr.unique())
        if len(lrs) == 2:  # the same seed (so the same initial adapter) at both LRs
            pairs = {(d, s) for d, _, s in wide.columns}
            across = [spearman(wide[(d, lrs[0], s)], wide[(d, lrs[1], s)]) for d, s in sorted(pairs)]
            rows[-1]["LR vs LR (same domain and seed)"] = np.nanmean(across)
    return pd.DataFrame(rows)


def attention_shares(layers: pd.DataFrame, ft_layers: pd.DataFrame | None) -> pd.DataFrame:
    """Attention's share of ‖ΔW‖²_F and of ‖W₀‖²_F per domain and LR (mean over layers and seeds),
    LoRA's and, when the run has the arm, full FT's."""
    frames = [layers.assign(method="LoRA")] + ([ft_layers.assign(method="full FT")] if ft_layers is not None else [])
    both = pd.concat(frames, ignore_index=True)
    att = both.groupby(["method", "domain", "lr"])[["attention_share", "attention_w0_share"]].mean().reset_index()
    att["lr"] = att["lr"].map(lr_label)
    return att


def module_changes(modules: pd.DataFrame) -> pd.DataFrame:
    """Mean ‖ΔW‖_F/‖W₀‖_F per module (rows) and LR (columns), each column ÷ its smallest module."""
    table = modules.pivot_table(index="module", columns="lr", values="rel_fro", aggfunc="mean")
    table.columns = [f"{lr_label(lr)}" for lr in table.columns]
    ratios = (table / table.min()).round(2).add_suffix(" ÷ smallest")
    return table.map("{:.2e}".format).join(ratios).sort_values(ratios.columns[-1], ascending=False)


def tables_markdown(results: Path) -> str:
    """Every table above, as markdown, from the tables of a finished run in `results`."""
    layers = pd.read_parquet(results / "layers.parquet")
    out = []
    st = stability(layers)
    out.append("## Seed-to-seed Spearman ρ of the layer ranking (mean over seed pairs)\n\n")
    out.append(st.pivot_table(index="metric", columns="cell", values="rho").round(2).to_markdown() + "\n\n")
    out.append(
        "Mean ρ per metric: " + st.groupby("metric").rho.mean().round(2).to_string().replace("\n", "; ") + "\n\n"
    )
    out.append(
        "## Profile verdicts (flat, or layers beyond the seed band), layer-to-layer spread and margin\n\n"
        "margin = min(spread ÷ 5%, largest |layer − median| ÷ seed band): not flat exactly when > 1, "
        f"borderline within {BORDERLINE}× of 1.\n\n"
    )
    verdicts = st.assign(
        text=st.verdict
        + " ("
        + (100 * st.spread).round(1).astype(str)
        + "%; margin "
        + st.margin.round(2).astype(str)
        + st.borderline.map({True: ", borderline", False: ""})
        + ")"
    )
    out.append(
        verdicts.pivot_table(index="cell", columns="metric", values="text", aggfunc="first").to_markdown() + "\n\n"
    )
    out.append("## Layer rankings: seed vs seed, domain vs domain, LR vs LR (mean Spearman ρ)\n\n")
    out.append(ranking_agreement(layers).round(2).to_markdown(index=False) + "\n\n")
    out.append("## Domains vs seed noise (permutation tests over cells)\n\n")
    tests = domain_differences(layers)
    for column in ("magnitude p", "shape p"):  # exact p can be 1/14,400: keep two significant digits
        tests[column] = tests[column].map("{:.2g}".format)
    out.append(tests.round(4).to_markdown(index=False) + "\n\n")
    out.append("## Attention vs MLP (shares among the adapted projections)\n\n")
    full_ft_file = results / "full_ft_layers.parquet"
    ft_layers = pd.read_parquet(full_ft_file) if full_ft_file.exists() else None
    att = attention_shares(layers, ft_layers)
    out.append(att.round(3).to_markdown(index=False) + "\n\n")
    modules_file = results / "modules.parquet"
    if modules_file.exists():
        out.append("## ‖ΔW‖_F/‖W₀‖_F per module (mean over layers, domains and seeds; ÷ the smallest)\n\n")
        out.append(module_changes(pd.read_parquet(modules_file)).to_markdown() + "\n\n")
    if ft_layers is not None:
        from locus.analysis.full_ft import rho_table

        rho = rho_table(layers, ft_layers)
        out.append("## LoRA vs full fine-tuning: Spearman ρ of the layer profiles, the same metric on both sides\n\n")
        table = rho.groupby(["domain", "lora_lr", "ft_lr", "lora_metric"]).rho.agg(["mean", "std", "count"])
        out.append(table.round(2).reset_index().to_markdown(index=False) + "\n\n")
    if "rep_change_local" in layers:
        out.append("## Representation change vs weight maps: Spearman ρ over layers per cell\n\n")
        rho = agreement(layers)
        out.append(
            rho.groupby(["domain", "lr"]).agg(["mean", "std"]).drop(columns="seed").round(2).to_markdown() + "\n\n"
        )
        for col in ("rep_change_local", "rep_change"):
            prof = layers.groupby("layer")[col].mean()
            out.append(f"{LABELS[col]} by layer (mean over cells): " + ", ".join(f"{v:.2e}" for v in prof) + "\n\n")
    return "".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--preset", default=None)
    parser.add_argument("--tables", type=Path, help="a directory of a run's tables (default: the preset's results_dir)")
    args = parser.parse_args()
    results = args.tables or Path(params_module.load(args.params, args.preset).results_dir)
    sys.stdout.write(tables_markdown(results))


if __name__ == "__main__":
    main()
