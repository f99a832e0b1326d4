"""Stage: the targeted-layer validation report → validation.html (self-contained) + validation.parquet.

validation.parquet has one row per domain × arm × seed: the arm's layers and its eval loss before
and after training (from each run's metrics.json). The page shows, per domain, the ranking that
chose the layers, eval loss by arm (mean ± sd over seeds), the paired comparison random − top per
seed and draw, and a verdict computed by locus.analysis.validation.verdict.
"""

from __future__ import annotations

import html

import altair as alt
import pandas as pd

from locus import io, layout
from locus.analysis.validation import paired_differences, verdict
from locus.params import name_argument
from locus.report.page import chart_sections, html_page


def read_arms(params, domains: list[str]) -> dict[str, dict]:
    """{domain: its arms.json} (locus rank-layers: the ranking, the arm layer sets), read once."""
    return {domain: io.read_json(layout.arms_path(params, domain)) for domain in domains}


def arm_table(params, arms: dict[str, dict], experiment: bool) -> pd.DataFrame:
    """One row per (domain, arm, seed) from read_arms() and each run's metrics.json.

    A DVC experiment trains only its grid's cells, so there the all-layer arm has the seeds that
    are also grid seeds; Snakemake trains the all-layer cell for every validation seed.
    """
    v, rows = params.validation, []
    for domain, arm, seed in layout.validation_runs(params):
        if domain not in arms or (experiment and arm == "all" and seed not in params.grid.seeds):
            continue
        layers = arms[domain]["arms"][arm]
        metrics_file = layout.arm_dir(params, domain, arm, seed) / "metrics.json"
        if not metrics_file.exists():
            raise FileNotFoundError(f"{metrics_file}: missing for arm {arm}, seed {seed} of domain {domain}")
        m = io.read_json(metrics_file)
        rows.append(
            {
                "domain": domain,
                "arm": arm,
                "seed": seed,
                "n_layers": len(layers),
                "layers": ",".join(map(str, layers)),
                "lr": v.learning_rate,
                "eval_loss_before": m["eval_loss_before"],
                "eval_loss_after": m["eval_loss_after"],
                "optimizer_steps": m["optimizer_steps"],
                "train_seconds": m["train_seconds"],
                "run": str(metrics_file.parent),
            }
        )
    return pd.DataFrame(rows)


def arm_order(arms) -> list[str]:
    """top, random0, random1, ..., bottom, all."""
    rank = {"top": 0, "bottom": 2, "all": 3}
    return sorted(set(arms), key=lambda a: (rank.get(a, 1), int(a[6:]) if a.startswith("random") else 0))


def chart(table: pd.DataFrame, domain: str) -> alt.LayerChart:
    """Eval loss after training by arm: one dot per seed, the mean (diamond) ± sd over seeds (bar)."""
    df = table[table["domain"] == domain].assign(kind=lambda t: t["arm"].str.replace(r"\d+$", "", regex=True))
    x = alt.X("arm:N", sort=arm_order(df["arm"]), title="arm (layers adapted)")
    y = alt.Y("eval_loss_after:Q", scale=alt.Scale(zero=False), title="eval loss after training")
    base = alt.Chart(df).encode(x=x)
    bars = base.mark_errorbar(extent="stdev", ticks=True).encode(y=y, color=alt.Color("kind:N", title="arm kind"))
    means = base.mark_point(shape="diamond", size=90, filled=True).encode(y="mean(eval_loss_after):Q", color="kind:N")
    dots = base.mark_circle(size=35, opacity=0.5, color="black").encode(
        y=y, tooltip=["arm", "seed", "layers", alt.Tooltip("eval_loss_after:Q", format=".4f")]
    )
    return (bars + means + dots).properties(title=f"{domain}: eval loss by arm", width=420, height=260)


def domain_section(doc: dict, table: pd.DataFrame, domain: str) -> tuple[str, str]:
    """(verdict sentence, HTML shown below the chart) for one domain; doc: its arms.json."""
    rows = table[table["domain"] == domain]
    pairs = paired_differences(rows)
    outcome, sentence = verdict(pairs["diff"], pairs["seed"].nunique())
    by_arm = (
        rows.groupby("arm")["eval_loss_after"]
        .agg(["mean", "std", "count"])
        .reindex(arm_order(rows["arm"]))
        .round(4)
        .reset_index()
    )
    layer_sets = rows.drop_duplicates("arm").set_index("arm")["layers"]
    by_arm.insert(1, "layers", by_arm["arm"].map(layer_sets))
    ranking = ", ".join(f"{r['layer']}" for r in doc["ranking"])
    ranked = (
        f"<p>Layers ranked by <b>{html.escape(doc['metric'])}</b> (mean over {doc['grid_seeds_averaged']} "
        f"grid seed(s) at lr={doc['learning_rate']:g}), highest first: {ranking}. "
        f"Random sets: {html.escape(doc['random_sets'])}.</p>"
    )
    per_seed = (
        pairs.groupby("seed")
        .agg(top=("top", "first"), random_mean=("random", "mean"), draws=("diff", "size"))
        .assign(diff=lambda t: t["random_mean"] - t["top"])
        .round(4)
        .reset_index()
    )
    tables = (
        "<h3>Eval loss by arm (mean ± sd over seeds)</h3>"
        + by_arm.to_html(index=False)
        + "<h3>Paired by seed: random − top (positive: top-k did better)</h3>"
        + per_seed.to_html(index=False)
        + f"<p>Outcome: <b>{outcome}</b>.</p>"
    )
    return sentence, ranked + tables


def add_arguments(parser) -> None:
    parser.add_argument(
        "--domain",
        action="append",
        default=None,
        type=name_argument,
        help="report only this validation domain (repeatable; default: validation.domains)",
    )
    parser.add_argument("--out", required=True, help="validation.html to write")
    parser.add_argument("--table", required=True, help="validation.parquet to write")


def run(args, params) -> None:
    v = params.validation
    if not v.domains:
        raise ValueError("validation.domains is empty: the targeted-layer validation is off (params.yaml)")
    domains = args.domain or v.domains
    unknown = [d for d in domains if d not in v.domains]
    if unknown:
        raise ValueError(f"--domain {unknown} not in validation.domains {v.domains}")
    arms = read_arms(params, domains)
    table = arm_table(params, arms, args.experiment)
    parts, specs = [], {}
    for domain in domains:
        sentence, details = domain_section(arms[domain], table, domain)
        name = f"validation_{domain}"  # div ids must not start with a digit
        section, chart_specs = chart_sections({name: chart(table, domain)}, {name: sentence}, [(domain, name)])
        specs.update(chart_specs)
        parts.append(section + details)
    intro = (
        f"<p>Does the layer map predict where training pays off? Adapters trained only on the top-{v.k} layers "
        f"of the map are compared, at the same seeds and with the same data and budget (lr={v.learning_rate:g}), "
        f"with adapters on {len(v.random_arms)} random sets of {v.k} layers and on every layer (the grid cell). "
        "Verdict: beyond noise when the mean paired difference exceeds twice its standard deviation.</p>"
    )
    io.write_parquet(args.table, table)
    io.write_text(args.out, html_page("Targeted-layer validation of the layer map", intro + "\n".join(parts), specs))
    print(f"validation report ({len(table)} runs, {len(domains)} domain(s)) -> {args.out}, {args.table}")
