"""The numbers docs/findings.md's methods section quotes, from the committed tables of the run.

  python benchmarks/methods_tables.py --collect results/methods --out docs/findings/methods
  python benchmarks/methods_tables.py --tables docs/findings/methods > docs/findings/methods/tables.md

--collect copies a finished run's comparison tables (methods_layers/runs/rho/evaluation.parquet,
written by `locus aggregate`; locus.analysis.methods), its report and the report's computed sentences
(report_notes.md); --tables computes from those files alone:

1. Each method's map per domain and LR: the verdict against the seed band (with its margin), the
   late/early ratio (seed mean ± s.d.) and the seed-to-seed ρ — on ‖ΔW‖_F/‖W₀‖_F for the methods that
   change weights, on ‖ΔP‖_F for prefix tuning, and on the representation change (1 − CKA) for
   every adapter method.
2. Agreement: ρ between two methods' maps of the same metric (mean ± s.d. over domains and seeds)
   against each one's seed-to-seed ρ (locus.report.methods.agreement_words), for every method against
   the main method at each LR, and every weight-space method against full fine-tuning.
3. Attention's share of ‖ΔW‖²_F per weight-space method (mean of the layer means, range over
   cells) beside its share of ‖W₀‖²_F over the modules that method adapts (IA³ adapts k, v and
   down_proj; LoRA and DoRA q, k, v, o, up and down; full FT the same six): change against mass.
4. Cost and effect: trainable parameters (share of the 134.5M base), seconds per optimizer step,
   eval loss before and after per domain (seed means).
5. Held-out evaluation (methods_evaluation.parquet): each adapter cell against the base model on
   its own domain's split and on the other's — gain and forgetting (full FT is not evaluated there).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from locus.core.ranking import late_early_ratio, profile_shape, seed_stability
from locus.report.methods import FULL_FT, SCALE, agreement_words, label, rho_summary

BASE_PARAMETERS = 134_515_008  # SmolLM2-135M's parameter count (its safetensors, tied embeddings once)
FILES = (
    "methods_layers.parquet",
    "methods_runs.parquet",
    "methods_rho.parquet",
    "methods_evaluation.parquet",
    "layers.parquet",
    "summary.json",
)


def report_notes(html: str) -> str:
    """The report's computed sentences (each section's title and its notes), as Markdown."""
    import html as entities
    import re

    lines = ["<!-- The report's computed sentences, extracted from report.html by benchmarks/methods_tables.py. -->"]
    for title, body in re.findall(r"<h2>(.*?)</h2>(.*?)(?=<h2>|$)", html, flags=re.S):
        notes = [
            entities.unescape(re.sub(r"<[^>]+>", "", n)).strip()
            for n in re.findall(r"<p class=note>(.*?)</p>", body, flags=re.S)
        ]
        if notes:
            lines += ["", f"### {entities.unescape(title)}", ""] + [f"- {n}" for n in notes if n]
    return "\n".join(lines) + "\n"


def collect(results: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name in (*FILES, "report.html"):
        shutil.copyfile(results / name, out / name)
    (out / "report_notes.md").write_text(report_notes((results / "report.html").read_text()))
    if (out / "figures").exists():
        shutil.rmtree(out / "figures")
    shutil.copytree(results / "figures", out / "figures", ignore=shutil.ignore_patterns("*.png"))


def _fmt(values: list[float]) -> str:
    if not values:
        return "—"  # not measured (e.g. no other evaluation domain)
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def maps(layers: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for metric in ("rel_fro", "added_fro", "rep_change", "rep_change_local"):
        d = layers.dropna(subset=[metric])
        for (domain, method, lr), m in d.groupby(["domain", "method", "lr"], sort=False):
            per_seed = m.pivot_table(index="layer", columns="seed", values=metric)
            shape = profile_shape(per_seed)
            verdict = (
                "flat"
                if shape["flat"]
                else f"peak {shape['peak_layers']}"
                if shape["peak_layers"]
                else f"dip {shape['dip_layers']}"
            )
            rows.append(
                {
                    "metric": SCALE[metric],
                    "domain": domain,
                    "method @ LR": label(method, lr),
                    "verdict": verdict + (" (borderline)" if shape["borderline"] else ""),
                    "margin": f"{shape['margin']:.2f}",
                    "late/early": _fmt([late_early_ratio(per_seed[s]) for s in per_seed]),
                    "seed ρ": f"{seed_stability(per_seed):.2f}",
                    "last layer (seed mean)": f"{per_seed.mean(axis=1).iloc[-1]:.3g}",
                }
            )
    return pd.DataFrame(rows)


def agreement(rho: pd.DataFrame, main: str) -> pd.DataFrame:
    rows = []
    for metric in ("rel_fro", "rep_change", "rep_change_local"):
        summary = rho_summary(rho, metric)
        series = sorted(set(summary.a) | set(summary.b))
        refs = [s for s in series if s.startswith(f"{main} @ ")] + (
            [s for s in series if s.startswith(FULL_FT)] if metric == "rel_fro" else []
        )
        for ref in refs:
            for s in series:
                if (
                    s != ref
                    and not (s.startswith(FULL_FT) and ref.startswith(FULL_FT))
                    and (words := agreement_words(summary, ref, s))
                ):
                    rows.append({"metric": SCALE[metric], "reference": ref, "sentence": words})
    return pd.DataFrame(rows)


def attention(layers: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for (method, lr), m in layers.dropna(subset=["attention_share"]).groupby(["method", "lr"], sort=False):
        per_seed = m.groupby(["domain", "seed"]).attention_share.mean()
        rows.append(
            {
                "method @ LR": label(method, lr),
                "attention share of ‖ΔW‖²_F": f"{per_seed.mean():.1%}",
                "range over cells": f"{per_seed.min():.1%}–{per_seed.max():.1%}",
                # like for like: the share attention has of the weights this method adapts
                "of ‖W₀‖²_F (its adapted modules)": f"{m.attention_w0_share.mean():.1%}",
            }
        )
    return pd.DataFrame(rows)


def costs(runs: pd.DataFrame) -> pd.DataFrame:
    runs = runs.assign(per_step=runs.train_seconds / runs.optimizer_steps)
    rows = []
    for (method, lr, domain), r in runs.groupby(["method", "lr", "domain"], sort=False):
        p = int(r.trainable_parameters.iloc[0])
        rows.append(
            {
                "method @ LR": label(method, lr),
                "domain": domain,
                "trainable": f"{p:,} ({p / BASE_PARAMETERS:.3%})",
                "s/step": f"{r.per_step.median():.1f}",
                "eval loss before → after": f"{r.eval_loss_before.mean():.3f} → {r.eval_loss_after.mean():.3f}",
            }
        )
    return pd.DataFrame(rows)


def held_out(evaluation: pd.DataFrame) -> pd.DataFrame:
    """Per method @ LR and training domain: Δ eval loss against the base model on its own domain's
    held-out split (gain when negative) and on the other domain's (forgetting when positive), seed
    mean ± s.d.; the same for token accuracy."""
    rows = []
    for (method, lr, domain), e in evaluation.groupby(["method", "lr", "domain"], sort=False):
        own, other = e[e.in_domain], e[~e.in_domain]
        rows.append(
            {
                "method @ LR": label(method, lr),
                "trained on": domain,
                "Δ loss, own domain": _fmt(own.groupby("seed").delta_loss.mean().tolist()),
                "Δ loss, other domain": _fmt(other.groupby("seed").delta_loss.mean().tolist()),
                "Δ accuracy, own": _fmt(own.groupby("seed").delta_accuracy.mean().tolist()),
                "Δ accuracy, other": _fmt(other.groupby("seed").delta_accuracy.mean().tolist()),
            }
        )
    return pd.DataFrame(rows)


def tables_markdown(tables: Path, main: str = "lora") -> str:
    layers = pd.read_parquet(tables / "methods_layers.parquet")
    rho, runs = pd.read_parquet(tables / "methods_rho.parquet"), pd.read_parquet(tables / "methods_runs.parquet")
    parts = [
        "# The methods run: the numbers docs/findings.md quotes\n",
        "Computed by `python benchmarks/methods_tables.py --tables docs/findings/methods` from the committed tables.\n",
        "## 1. Each method's map\n",
        maps(layers).to_markdown(index=False),
        "\n## 2. Do the maps agree? (same metric on both sides; seed-to-seed ρ as the ceiling)\n",
        agreement(rho, main).to_markdown(index=False),
        "\n## 3. Attention's share of ‖ΔW‖²_F\n",
        attention(layers).to_markdown(index=False),
        "\n## 4. Cost and effect\n",
        costs(runs).to_markdown(index=False),
    ]
    if (tables / "methods_evaluation.parquet").exists():
        parts += [
            "\n## 5. Held-out evaluation against the base model (Δ = after − base; seed mean ± s.d.)\n",
            held_out(pd.read_parquet(tables / "methods_evaluation.parquet")).to_markdown(index=False),
        ]
    return "\n".join(parts) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collect", type=Path, help="a finished run's results directory")
    parser.add_argument("--out", type=Path, help="where --collect copies the tables")
    parser.add_argument("--tables", type=Path, help="committed tables to compute tables.md from")
    args = parser.parse_args()
    if args.collect:
        collect(args.collect, args.out)
    if args.tables:
        print(tables_markdown(args.tables), end="")


if __name__ == "__main__":
    main()
