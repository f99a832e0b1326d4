"""The numbers docs/findings.md's "One epoch" section quotes, from the committed tables of the run.

  python benchmarks/epoch_tables.py --collect results/epoch_cpu --preset epoch_cpu --out docs/findings/epoch
  python benchmarks/epoch_tables.py --tables docs/findings/epoch > docs/findings/epoch/tables.md

--collect copies what the tables need out of a finished run (layers.parquet, modules.parquet,
summary.json, every analysed cell's trajectory.parquet in one table, and each cell's budget from
its metrics.json as runs.csv); --tables computes, from those files alone (plus the 16-step study's
committed layers.parquet for the comparison):

1. The end-of-epoch map per domain × LR and metric: its verdict against the seed band with the
   margin (study_tables.stability), the late/early ratio, and seed-to-seed ρ.
2. The 16-step map against the end-of-epoch map of the same seeds: Spearman ρ per seed (mean, s.d.)
   and between the seed means.
3. The late/early ratio along the trajectory (seed mean ± s.d.) at every snapshot.
4. Seed-to-seed ρ along the trajectory.
5. The domains compared: on mean |Δ| ÷ Σ lr_t at the end (their budgets differ) and at equal steps
   (locus.analysis.trajectory.domains_at_equal_steps), each p with the floor its labellings allow.
6. Attention's share of ‖ΔW‖²_F at step 16 and at the end.
7. Against the 16-step study (docs/findings/study): ρ between the study's seed-mean map and this run's
   map at step 16 and at the end, for the domains both ran.
8. Representation change at the end of the epoch: by layer, and its Spearman ρ with the weight maps
   per cell (locus.report.representation.agreement, as the study's tables).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from locus import params as params_module
from locus.analysis.grid import read_metrics
from locus.analysis.trajectory import (
    EARLY_STEP,
    domains_at_equal_steps,
    late_early_along,
    read_trajectories,
    seed_agreement,
)
from locus.core.ranking import cell_size_and_shape, domain_test, late_early_ratio, smallest_domain_p, spearman
from locus.params import lr_label

sys.path.insert(0, str(Path(__file__).resolve().parent))
from study_tables import attention_shares, module_changes, stability  # noqa: E402  (benchmarks/ is not a package)

ROOT = Path(__file__).resolve().parents[1]
STUDY = ROOT / "docs" / "findings" / "study"
MAP_METRICS = ["mean_abs", "rel_fro", "fro", "var_abs"]


def collect(results: Path, params, out: Path) -> None:
    """Copy a finished run's tables into `out` (the committed form --tables reads)."""
    out.mkdir(parents=True, exist_ok=True)
    for name in ("layers.parquet", "modules.parquet", "summary.json"):
        shutil.copyfile(results / name, out / name)
    read_trajectories(params).to_parquet(out / "trajectory.parquet", index=False)
    runs = [
        {
            "domain": domain,
            "lr": lr,
            "seed": seed,
            "optimizer_steps": m["optimizer_steps"],
            "sum_lr": m.get("sum_lr"),
            "train_examples": m["train"]["examples"],
            "eval_loss_before": m["eval_loss_before"],
            "eval_loss_after": m["eval_loss_after"],
            "train_seconds": m["train_seconds"],
        }
        for (domain, lr, seed), m in read_metrics(params).items()
    ]
    pd.DataFrame(runs).to_csv(out / "runs.csv", index=False)


def end_maps(layers: pd.DataFrame) -> pd.DataFrame:
    """Table 1: verdict, margin, spread and seed-to-seed ρ (study_tables.stability) with the
    late/early ratio of each seed's profile (mean ± s.d. over seeds)."""
    st = stability(layers[[c for c in layers if c not in ("rep_change", "rep_change_local")]])
    st = st[st.metric.isin(MAP_METRICS + ["mean_abs_per_lr"])]
    ratios = {}
    for (domain, lr, metric), g in layers.melt(
        id_vars=["domain", "lr", "seed", "layer"], value_vars=MAP_METRICS, var_name="metric"
    ).groupby(["domain", "lr", "metric"]):
        per_seed = [late_early_ratio(s.set_index("layer")["value"]) for _, s in g.groupby("seed")]
        ratios[(f"{domain}@{lr_label(lr)}", metric)] = f"{np.mean(per_seed):.3f} ± {np.std(per_seed, ddof=1):.3f}"
    st["late/early"] = [ratios.get((c, m), "") for c, m in zip(st.cell, st.metric)]
    return st.assign(spread=(100 * st.spread).round(1), rho=st.rho.round(2), margin=st.margin.round(2))[
        ["cell", "metric", "verdict", "margin", "borderline", "spread", "late/early", "rho"]
    ]


def early_vs_end(trajectory: pd.DataFrame) -> pd.DataFrame:
    """Table 2: ρ between each seed's map at EARLY_STEP and its own map at the last snapshot."""
    rows = []
    for (domain, lr), g in trajectory.groupby(["domain", "lr"]):
        last = g.step.max()
        for metric in MAP_METRICS:
            wide = g.pivot_table(index="layer", columns=["step", "seed"], values=metric)
            per_seed = [spearman(wide[(EARLY_STEP, s)], wide[(last, s)]) for s in sorted(g.seed.unique())]
            means = g.pivot_table(index="layer", columns="step", values=metric)
            rows.append(
                {
                    "cell": f"{domain}@{lr_label(lr)}",
                    "metric": metric,
                    "last step": int(last),
                    "ρ per seed (mean)": np.mean(per_seed),
                    "ρ per seed (s.d.)": np.std(per_seed, ddof=1) if len(per_seed) > 1 else np.nan,
                    "ρ of seed means": spearman(means[EARLY_STEP], means[last]),
                }
            )
    return pd.DataFrame(rows).round(2)


def along(trajectory: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Tables 3 and 4: per step, each cell's late/early ratio (mean ± s.d.) and seed-to-seed ρ."""
    ratios = late_early_along(trajectory, metric).groupby(["domain", "lr", "step"]).ratio
    table = pd.DataFrame({"late/early mean": ratios.mean(), "late/early s.d.": ratios.std(ddof=1)})
    rho = seed_agreement(trajectory, metric).set_index(["domain", "lr", "step"]).rho.rename("seed-to-seed ρ")
    table = table.join(rho).reset_index()
    table["cell"] = table.domain + "@" + table.lr.map(lr_label)
    return table.pivot_table(
        index="step", columns="cell", values=["late/early mean", "late/early s.d.", "seed-to-seed ρ"]
    ).round(3)


def domain_comparison(layers: pd.DataFrame, trajectory: pd.DataFrame, runs: pd.DataFrame) -> str:
    """Table 5: the domains at the end on mean |Δ| ÷ Σ lr_t, and at equal steps on mean |Δ|."""
    out = []
    steps = runs.groupby("domain").optimizer_steps.unique().map(lambda v: "/".join(map(str, sorted(v))))
    out.append("Optimizer steps per domain (one epoch each): " + ", ".join(f"{d} {s}" for d, s in steps.items()))
    seeds, domains = layers.seed.nunique(), layers.domain.nunique()
    out.append(
        f"Smallest p a permutation test over {domains} domains × {seeds} seeds allows: {smallest_domain_p(domains, seeds):.3g}"
    )
    rows = []
    for lr, g in layers.groupby("lr"):
        for metric in ("mean_abs_per_lr", "rel_fro"):
            size, shape = cell_size_and_shape(g, metric)
            means = size[metric].groupby(level="domain").mean().sort_values()
            rows.append(
                {
                    "lr": lr_label(lr),
                    "metric": metric,
                    "largest": means.index[-1],
                    "largest/smallest": round(float(means.iloc[-1] / means.iloc[0]), 3),
                    "p size": f"{domain_test(size)[1]:.3g}",
                    "p shape": f"{domain_test(shape)[1]:.3g}",
                }
            )
    out.append("At the end of the epoch:\n\n" + pd.DataFrame(rows).to_markdown(index=False))
    equal = domains_at_equal_steps(trajectory, "mean_abs").assign(lr=lambda d: d.lr.map(lr_label))
    equal[["p_size", "p_shape"]] = equal[["p_size", "p_shape"]].map("{:.3g}".format)
    out.append("At equal optimizer steps (mean |Δ|):\n\n" + equal.round(3).to_markdown(index=False))
    return "\n\n".join(out)


def attention(trajectory: pd.DataFrame) -> pd.DataFrame:
    """Table 6: attention's share of ‖ΔW‖²_F at EARLY_STEP and at the end (each seed's mean over
    layers; mean and s.d. over seeds)."""
    last = trajectory.groupby(["domain", "lr"]).step.transform("max")
    picked = trajectory[(trajectory.step == EARLY_STEP) | (trajectory.step == last)]
    picked = picked.assign(at=np.where(picked.step == EARLY_STEP, f"step {EARLY_STEP}", "end"))
    per_seed = picked.groupby(["domain", "lr", "at", "seed"])[["attention_share", "attention_w0_share"]].mean()
    table = per_seed.groupby(["domain", "lr", "at"]).agg(
        attention_share=("attention_share", "mean"),
        seed_sd=("attention_share", "std"),
        attention_w0_share=("attention_w0_share", "mean"),
    )
    table = table.reset_index()
    return table.assign(lr=table.lr.map(lr_label)).round(4)


def against_study(trajectory: pd.DataFrame, study_layers: pd.DataFrame) -> pd.DataFrame:
    """Table 7: ρ between the 16-step study's seed-mean map and this run's at EARLY_STEP and at the end."""
    rows = []
    for (domain, lr), g in trajectory.groupby(["domain", "lr"]):
        study = study_layers[(study_layers.domain == domain) & np.isclose(study_layers.lr, lr)]
        if study.empty:
            continue
        for metric in MAP_METRICS:
            ref = study.groupby("layer")[metric].mean()
            means = g.pivot_table(index="layer", columns="step", values=metric)
            rows.append(
                {
                    "cell": f"{domain}@{lr_label(lr)}",
                    "metric": metric,
                    f"ρ(study, epoch step {EARLY_STEP})": spearman(ref, means[EARLY_STEP]),
                    "ρ(study, epoch end)": spearman(ref, means[means.columns.max()]),
                }
            )
    return pd.DataFrame(rows).round(2)


def representation(layers: pd.DataFrame) -> str:
    """Table 8: Spearman ρ between the layer-alone representation change and the weight maps per
    cell (mean, s.d. over seeds), and both representation profiles by layer (mean over cells)."""
    from locus.core.stats import LABELS
    from locus.report.representation import agreement

    rho = agreement(layers).groupby(["domain", "lr"]).agg(["mean", "std"]).drop(columns="seed").round(2)
    lines = [rho.to_markdown()]
    for column in ("rep_change_local", "rep_change"):
        by_layer = layers.groupby(["domain", "layer"])[column].mean().unstack("domain")
        lines.append(f"{LABELS[column]} by layer (mean over seeds):\n\n" + by_layer.to_markdown(floatfmt=".2e"))
    return "\n\n".join(lines) + "\n"


def tables_markdown(tables: Path, study: Path = STUDY) -> str:
    """Every table above, as markdown, from the committed files in `tables`."""
    layers = pd.read_parquet(tables / "layers.parquet")
    trajectory = pd.read_parquet(tables / "trajectory.parquet")
    runs = pd.read_csv(tables / "runs.csv")
    out = ["## Runs\n\n", runs.round(4).to_markdown(index=False), "\n\n"]
    out += [
        "## 1. End-of-epoch maps: verdict, margin, spread (%), late/early (mean ± s.d. over seeds), seed-to-seed ρ\n\n"
    ]
    out += [end_maps(layers).to_markdown(index=False), "\n\n"]
    out += [f"## 2. Step {EARLY_STEP} vs the end of the epoch, the same seeds (Spearman ρ of the layer ranking)\n\n"]
    out += [early_vs_end(trajectory).to_markdown(index=False), "\n\n"]
    for metric in ("mean_abs", "rel_fro"):
        out += [f"## 3–4. Along the trajectory, {metric}: late/early ratio and seed-to-seed ρ per snapshot\n\n"]
        out += [along(trajectory, metric).to_markdown(), "\n\n"]
    out += ["## 5. Domains\n\n", domain_comparison(layers, trajectory, runs), "\n\n"]
    out += ["## 6. Attention's share of ‖ΔW‖²_F (among the adapted projections)\n\n"]
    out += [attention(trajectory).to_markdown(index=False), "\n\n"]
    out += [
        "End of epoch, every cell (the aggregate tables):\n\n",
        attention_shares(layers, None).round(3).to_markdown(index=False),
        "\n\n‖ΔW‖_F/‖W₀‖_F per module at the end (mean over layers, domains and seeds; ÷ the smallest):\n\n",
        module_changes(pd.read_parquet(tables / "modules.parquet")).to_markdown(),
        "\n\n",
    ]
    out += [f"## 7. Against the 16-step study ({study.relative_to(ROOT) if study.is_relative_to(ROOT) else study})\n\n"]
    out += [against_study(trajectory, pd.read_parquet(study / "layers.parquet")).to_markdown(index=False), "\n\n"]
    out += ["## 8. Representation change at the end of the epoch\n\n", representation(layers)]
    return "".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--preset", default="epoch_cpu")
    parser.add_argument("--collect", type=Path, help="a finished run's results_dir to copy the tables from")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "findings" / "epoch")
    parser.add_argument("--tables", type=Path, help="a directory of collected tables: print tables.md")
    args = parser.parse_args()
    if args.collect:
        collect(args.collect, params_module.load(args.params, args.preset), args.out)
    if args.tables:
        sys.stdout.write(tables_markdown(args.tables))


if __name__ == "__main__":
    main()
