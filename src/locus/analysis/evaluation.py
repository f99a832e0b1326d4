"""Held-out evaluation: the model as training evaluates it, and the cross-domain matrix.

Loss and token accuracy of a model on an eval split are locus.training.scoring's (the training loop
reports the same eval loss).

Cross-domain matrix (stages/aggregate.py → evaluation.parquet): for a cell trained on domain i
and every evaluation domain j, Δloss = loss_after(j) − loss_base(j), where "before" is the base
model — the initial adapter has lora_B = 0, so the model before training *is* the base. Diagonal
(i = j): in-domain gain (negative Δ); off-diagonal: what training on i did to j ("forgetting"
when positive).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from locus import io
from locus.params import lr_label

KEYS = ["domain", "lr", "seed", "eval_domain"]


def load_for_eval(params, model_dir: str | Path, adapter: str | Path | None = None, w0_file=None):
    """The model exactly as the train stage evaluates it: the base loaded per params (NF4 when
    quantization says so), prepared like training (prepare_model_for_kbit_training casts the
    non-quantized weights to fp32), plus the adapter when given; in eval mode (no dropout)."""
    from peft import PeftModel, prepare_model_for_kbit_training

    from locus.training.modeling import load_base

    model = load_base(params, model_dir, w0_file=w0_file)  # on the job's GPU when there is one, NF4 or not
    if params.quantization.method == "nf4":
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    if adapter is not None:
        model = PeftModel.from_pretrained(model, str(adapter), is_trainable=False)
    return model.eval()


# ---------------------------------------------------------------- the cross-domain table


def cross_domain_table(params) -> pd.DataFrame:
    """One row per (train domain, lr, seed, eval domain): loss/accuracy before (base) and after.

    Reads every evaluated cell's eval.json and each domain's eval_base.json (locus.layout)."""
    from locus.layout import cell_dir, eval_base_path, evaluated_cells

    base = {}
    for d in params.evaluation.domains:
        path = eval_base_path(params, d)
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing base-model evaluation for domain {d}")
        base[d] = io.read_json(path)["scores"][d]
    rows = []
    for domain, lr, seed in evaluated_cells(params):
        path = cell_dir(params, domain, lr, seed) / "eval.json"
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing evaluation of cell {domain}, lr={lr}, seed={seed}")
        scores = io.read_json(path)["scores"]
        for d in params.evaluation.domains:
            if d not in scores:
                raise ValueError(f"{path}: no score for evaluation domain {d!r} (re-run locus evaluate)")
            rows.append(
                {
                    "domain": domain,
                    "lr": lr,
                    "seed": seed,
                    "eval_domain": d,
                    "loss_before": base[d]["loss"],
                    "loss_after": scores[d]["loss"],
                    "accuracy_before": base[d]["accuracy"],
                    "accuracy_after": scores[d]["accuracy"],
                    "tokens": scores[d]["tokens"],
                }
            )
    df = pd.DataFrame(rows, columns=KEYS + ["loss_before", "loss_after", "accuracy_before", "accuracy_after", "tokens"])
    return df.assign(
        delta_loss=df.loss_after - df.loss_before,
        delta_accuracy=df.accuracy_after - df.accuracy_before,
        in_domain=df.domain == df.eval_domain,
    )


def gain_and_forgetting(table: pd.DataFrame) -> pd.DataFrame:
    """Per (train domain, lr): in-domain Δloss and mean off-domain Δloss, seeds averaged (NaN off-
    domain with a single evaluation domain)."""
    per_seed = table.groupby(["domain", "lr", "seed", "in_domain"])["delta_loss"].mean().unstack("in_domain")
    per_seed = per_seed.reindex(columns=[True, False])
    per_seed.columns = ["in_domain", "off_domain"]
    return per_seed.groupby(["domain", "lr"]).mean().reset_index()


def describe(table: pd.DataFrame, lr: float) -> str:
    """One computed sentence for one LR: in-domain gain vs off-domain forgetting."""
    t = table[table.lr == lr]
    g = gain_and_forgetting(t)
    seeds = t.seed.nunique()
    improved = int((g.in_domain < 0).sum())
    # Seed noise of each average: the s.d. over seeds of that seed's mean change.
    by_seed = t.groupby(["seed", "in_domain"]).delta_loss.mean().unstack()

    def sd(in_domain: bool) -> str:
        return f" (s.d. {by_seed[in_domain].std(ddof=1):.3f} across seeds)" if seeds > 1 else ""

    text = (
        f"LR {lr_label(lr)}: in-domain eval loss changes by {g.in_domain.mean():+.3f} nats on average{sd(True)} "
        f"({improved}/{len(g)} training domains improve on their own eval split; token accuracy "
        f"{t[t.in_domain].delta_accuracy.mean():+.1%})"
    )
    off = t[~t.in_domain]
    if off.empty:
        return text + "; one evaluation domain, so no off-domain effect is measured."
    pair = off.groupby(["domain", "eval_domain"]).delta_loss.mean()
    (wi, wj), worst = pair.idxmax(), pair.max()
    text += (
        f"; off-domain by {g.off_domain.mean():+.3f}{sd(False)} ({int((pair > 0).sum())}/{len(pair)} train→eval pairs "
        f"get worse, most {wi}→{wj} {worst:+.3f})"
    )
    ratio = -g.in_domain.mean() / abs(g.off_domain.mean()) if g.off_domain.mean() else np.inf
    text += f"; in-domain gain is {ratio:.1f}× the off-domain change" if np.isfinite(ratio) else ""
    return text + (f" (mean over {seeds} seeds)." if seeds > 1 else " (one seed).")
