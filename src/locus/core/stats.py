"""Statistics of LoRA weight changes, as defined by the seed experiment.

For each adapted matrix (lora_A or lora_B of one module in one layer) with Δ = final − initial:
  mean      mean(Δ)         directional bias of the update
  var       var(Δ)          population variance (ddof=0): spread of the changes
  mean_abs  mean(|Δ|)       magnitude of adaptation — the seed's headline metric
  var_abs   var(|Δ|)        how evenly that magnitude is spread
Computed in float64 so the statistics do not depend on the adapter's storage dtype.

Beside them, the Adam-aware magnitude
  mean_abs_per_lr  mean(|Δ|) ÷ Σ_t lr_t   (lr_t: the learning rate applied at optimizer step t)
Adam moves every element by lr_t·m̂_t/(√v̂_t + ε) per step, which is about lr_t in size whatever the
gradient's scale (Kingma & Ba 2015, §2.1; at most lr_t·(1−β₁)/√(1−β₂)). So mean(|Δ|) is mostly
Σ_t lr_t — steps × learning rate — times how consistently each element's gradient kept its sign.
Dividing by Σ_t lr_t leaves that consistency, in [0, (1−β₁)/√(1−β₂)]: comparable across learning
rates, step budgets and domains (tests/unit/test_budget.py checks the bounds with the real optimizer).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from locus.core.keys import lora_key

CELL = ["domain", "lr", "seed"]  # the key columns of every per-cell table
STATISTICS = ("mean", "var", "mean_abs", "var_abs")
PER_LR = "mean_abs_per_lr"
REPRESENTATION = ("rep_change", "rep_change_local")  # locus.analysis.representation
# How charts and report sentences name each statistic and metric.
LABELS = {
    "mean": "mean Δ",
    "var": "var Δ",
    "mean_abs": "mean |Δ|",
    "mean_abs_per_lr": "mean |Δ| ÷ Σ lr_t",
    "var_abs": "var |Δ|",
    "fro": "‖ΔW‖_F",
    "rel_fro": "‖ΔW‖_F / ‖W₀‖_F",
    "attention_share": "attention share of ‖ΔW‖²_F",
    "rep_change": "1 − CKA(h_base, h_tuned)",
    "rep_change_local": "1 − CKA, layer alone",
}


def matrix_stats(delta: np.ndarray) -> dict:
    d = np.asarray(delta, dtype=np.float64).ravel()
    a = np.abs(d)
    return {"n": d.size, "mean": d.mean(), "var": d.var(), "mean_abs": a.mean(), "var_abs": a.var()}


def sum_applied_lr(metrics: dict) -> float:
    """Σ_t lr_t over the optimizer steps of a cell (metrics.json of the train stage)."""
    total = metrics.get("sum_lr")
    if not total or total <= 0:
        raise ValueError(f"sum_lr is {total!r}: no optimizer step with a positive learning rate")
    return float(total)


def delta_table(
    initial: dict[str, np.ndarray], final: dict[str, np.ndarray], sum_lr: float | None = None
) -> pd.DataFrame:
    """One row per LoRA matrix: layer, block, module, matrix, n and the four statistics of Δ, plus
    mean_abs_per_lr when Σ_t lr_t is given."""
    if set(initial) != set(final):
        only = sorted(set(initial) ^ set(final))
        raise ValueError(f"initial and final adapters hold different tensors, e.g. {only[:3]}")
    rows = []
    for key in sorted(initial):
        if initial[key].shape != final[key].shape:
            raise ValueError(f"{key}: shape {initial[key].shape} before, {final[key].shape} after")
        delta = final[key].astype(np.float64) - initial[key].astype(np.float64)
        rows.append({**lora_key(key), **matrix_stats(delta)})
    if not rows:
        raise ValueError("the adapters hold no LoRA matrices")
    df = pd.DataFrame(rows).sort_values(["layer", "module", "matrix"], kind="stable").reset_index(drop=True)
    if sum_lr is not None:
        df[PER_LR] = df["mean_abs"] / sum_lr
    return df.astype({"layer": "int32", "n": "int64"})
