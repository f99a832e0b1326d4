"""Stage: the self-contained HTML report, plus every chart as PNG and SVG.

The Vega/Vega-Lite/vega-embed bundle is inlined once (from vl-convert, no CDN) and each chart's
spec is embedded after it, so report.html opens offline in any browser.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import pandas as pd

from locus import io
from locus.analysis.grid import read_metrics
from locus.core.ranking import BAND_Z, FLAT_SPREAD, smallest_domain_p
from locus.layout import data_dir
from locus.params import lr_label
from locus.report import charts
from locus.report import effective as charts_effective
from locus.report import experiments as charts_experiments
from locus.report import methods as charts_methods
from locus.report import representation as charts_representation
from locus.report import trajectory as charts_trajectory
from locus.report.page import chart_sections, html_page, save_figures
from locus.report.profiles import describe_profile


def run_table(metrics: dict[tuple, dict]) -> pd.DataFrame:
    rows = []
    for (domain, lr, seed), m in metrics.items():
        rows.append(
            {
                "domain": domain,
                "lr": lr_label(lr),
                "seed": seed,
                "steps": m["optimizer_steps"],
                "Σ lr_t": f"{m['sum_lr']:.3g}" if "sum_lr" in m else "",
                "train examples": f"{m['train']['examples']} (short of the budget)"
                if m["train"].get("budget_short")
                else m["train"]["examples"],
                "response tokens": m["train"]["response_tokens"],
                "truncated": m["train"]["truncated"],
                "eval loss before": round(m["eval_loss_before"], 4),
                "eval loss after": round(m["eval_loss_after"], 4),
                "train s": m["train_seconds"],
                "device": m["device"],
            }
        )
    return pd.DataFrame(rows)


def data_table(params) -> pd.DataFrame:
    rows = []
    for domain in params.grid.domains:
        s = io.read_json(data_dir(params, domain) / "stats.json")
        rows.append(
            {
                "domain": domain,
                "raw": s["n_raw"],
                "duplicates removed": s["n_duplicates_removed"],
                "train (used/split)": f"{s['n_train']}/{s['n_train_split']}",
                "eval (used/split)": f"{s['n_eval']}/{s['n_eval_split']}",
                "median response chars": s["chars"]["response"]["median"],
            }
        )
    return pd.DataFrame(rows)


def header(params) -> str:
    lp, t, q = params.lora, params.training, params.quantization
    quant = (
        f"NF4 (double quant {q.double_quant}, {q.compute_dtype} compute)"
        if q.method == "nf4"
        else f"none ({params.model.dtype})"
    )
    facts = {
        "Model": params.model.source,
        "Quantization": quant,
        "LoRA": f"r={lp.r}, alpha={lp.alpha:g}, dropout={lp.dropout}, rsLoRA={lp.use_rslora}, "
        f"modules={', '.join(lp.target_modules)}",
        "Training": f"{t.epochs:g} epoch(s), batch {t.per_device_batch_size} × accumulation {t.grad_accum_steps}, "
        f"{t.lr_scheduler} schedule, warmup {t.warmup_ratio:g}, max length {t.max_seq_length}",
        "Grid": f"domains {', '.join(params.grid.domains)}; LRs {', '.join(map(lr_label, params.grid.learning_rates))}; "
        f"seeds {', '.join(map(str, params.grid.seeds))}",
        "Generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    return "<dl>" + "".join(f"<dt>{k}</dt><dd>{html.escape(v)}</dd>" for k, v in facts.items()) + "</dl>"


PAGE = """<p>How much each LoRA matrix changed during fine-tuning (Δ = final − initial adapter weights),
averaged per transformer layer — the seed experiment's "locus of learning".</p>
<p>{bands}</p>
{header}
<h2>Data</h2>{data}
<h2>Runs</h2>{runs}
{sections}"""

SECTIONS = [
    ("Explore the layer profiles", "explorer"),
    ("Comparative weight changes across domains (seed statistics)", "cross_domain"),
    ("Weight change across layers in individual domains", "domain_"),
    ("Layer × module (seed statistic)", "module_heatmap"),
    ("Effective update: size-normalised vs raw ‖ΔW‖_F", "effective_profile"),
    ("‖ΔW‖_F / ‖W₀‖_F by layer × module", "effective_heatmap"),
    ("Attention vs MLP share of ‖ΔW‖²_F", "effective_attention"),
    ("Domain similarity of ΔW subspaces (φ, LoRA §7.2)", "effective_similarity"),
    charts_representation.SECTION,
]


SEED_BANDS = (
    f"Every shaded band is the seed band: the seed mean ± {BAND_Z:g} standard errors, the across-seed "
    "variance pooled over a profile's layers (two seeds give one degree of freedom per layer). A sentence "
    "calls a layer higher or lower only where its band clears the profile's median layer; a profile "
    f"with no such layer, or a layer-to-layer spread under {FLAT_SPREAD:.0%}, is called flat."
)


def noise_paragraph(params) -> str:
    """What the bands and the domain tests can resolve with this grid's seeds."""
    seeds, domains = len(params.grid.seeds), len(params.grid.domains)
    if seeds < 2:
        return "One seed: no seed band, and no finding is tested against seed noise (add seeds to grid.seeds)."
    return (
        f"{SEED_BANDS} Whether the domains differ is a permutation test over the cells, the domain labels "
        f"shuffled among the cells of each seed; with {seeds} seeds of {domains} domains its p cannot go "
        f"below {smallest_domain_p(domains, seeds):.2g} (more seeds resolve smaller p)."
    )


ADAM_NOTE = (
    " Right: the same ÷ Σ_t lr_t, the learning rates the optimizer applied. Adam moves every element "
    "by about lr per step, so raw mean |Δ| mostly counts steps × learning rate; divided by Σ lr_t it is "
    "comparable across learning rates and budgets (how consistently each weight kept its direction)."
)


# Notes that compare domains: where the domains' budgets differ, each says so first.
CROSS_DOMAIN_NOTES = ("cross_domain", "effective_", "representation", "explorer")


def budget_words(metrics: dict[tuple, dict], trajectories: bool = False) -> str:
    """'' when every domain trained the same number of optimizer steps at each LR; otherwise a
    sentence giving each domain's steps and what to compare instead (one epoch of unequal splits) —
    the learning-trajectory section only when the report has one."""
    steps: dict[float, dict[str, set]] = {}
    for (domain, lr, _), m in metrics.items():
        steps.setdefault(lr, {}).setdefault(domain, set()).add(m["optimizer_steps"])
    unequal = {lr: by for lr, by in steps.items() if len({s for v in by.values() for s in v}) > 1}
    if not unequal:
        return ""
    listed = "; ".join(
        f"LR {lr_label(lr)}: " + ", ".join(f"{d} {'/'.join(map(str, sorted(v)))}" for d, v in sorted(by.items()))
        for lr, by in sorted(unequal.items())
    )
    return (
        f"Unequal budgets — optimizer steps per domain ({listed}): raw sizes compare unequal training. "
        "Compare domains on mean |Δ| ÷ Σ lr_t"
        + (", or at equal steps in the learning-trajectory section. " if trajectories else ". ")
    )


def add_arguments(parser) -> None:
    parser.add_argument("--tables", required=True, help="directory holding layers.parquet and modules.parquet")
    parser.add_argument("--out", required=True, help="report.html to write")
    parser.add_argument("--figures", required=True, help="directory for PNG and SVG figures")


def run(args, params) -> None:
    layers = io.read_parquet(Path(args.tables) / "layers.parquet")
    modules = io.read_parquet(Path(args.tables) / "modules.parquet")
    metric = params.report.metric
    similarity = io.read_parquet(Path(args.tables) / "similarity.parquet")
    effective_figures, notes = charts_effective.figures(modules, similarity)
    representation_figures, representation_notes = charts_representation.figures(layers)
    notes |= representation_notes
    cell_metrics = read_metrics(params)
    figures = {
        **charts.explorer(layers, cell_metrics),
        **charts.cross_domain(layers, metric),
        **charts.per_domain(layers),
        **charts.module_heatmap(modules, metric),
        **effective_figures,
        **representation_figures,
    }
    for lr in params.grid.learning_rates:
        notes[f"cross_domain_lr={lr_label(lr)}"] = describe_profile(layers, lr, metric) + (
            ADAM_NOTE if metric == "mean_abs" and "mean_abs_per_lr" in layers else ""
        )

    budgets = budget_words(cell_metrics, trajectories=params.training.snapshot_every > 0)
    if budgets and len(params.grid.domains) > 1:
        notes = {k: budgets + v if k.startswith(CROSS_DOMAIN_NOTES) else v for k, v in notes.items()}
        notes.setdefault("explorer", budgets.strip())

    # optional experiments (held-out evaluation, full FT): nothing when they are off
    more_figures, more_notes, more_sections = charts_experiments.sections(args.tables, params, layers, modules)
    figures, notes = figures | more_figures, notes | more_notes
    method_figures, method_notes, method_sections = charts_methods.sections(args.tables, params)  # empty: one method
    figures, notes, more_sections = figures | method_figures, notes | method_notes, [*more_sections, *method_sections]
    trajectory_figures, trajectory_notes = charts_trajectory.figures(params)  # ({}, {}) when off
    figures, notes = figures | trajectory_figures, notes | trajectory_notes
    more_sections = [*more_sections, *([charts_trajectory.SECTION] if trajectory_figures else [])]
    save_figures(figures, args.figures)
    sections, specs = chart_sections(figures, notes, SECTIONS + more_sections)
    body = PAGE.format(
        header=header(params),
        bands=noise_paragraph(params),
        data=data_table(params).to_html(index=False),
        runs=run_table(cell_metrics).to_html(index=False),
        sections=sections,
    )
    io.write_text(args.out, html_page(params.report.title, body, specs))
    print(f"report with {len(figures)} figures -> {args.out}, {args.figures}/")
