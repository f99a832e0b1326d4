"""Plain-language findings computed from the layer tables (never written by hand).

Each sentence names where a profile peaks and how the last third of the network compares with the
first third; with several seeds it says whether that difference exceeds seed-to-seed spread.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from locus.charts import LABELS
from locus.params import lr_label


def _thirds(profile: pd.Series) -> tuple[float, float]:
    layers = np.sort(profile.index.unique())
    third = max(1, len(layers) // 3)
    return profile.loc[layers[:third]].mean(), profile.loc[layers[-third:]].mean()


def _peak_range(profile: pd.Series, width: int = 5) -> tuple[int, int]:
    """The `width` consecutive layers with the largest mean (the peak region)."""
    width = min(width, len(profile))
    smooth = profile.sort_index().rolling(width).mean()
    end = int(smooth.idxmax())
    return max(int(profile.index.min()), end - width + 1), end


def describe_lr(layers: pd.DataFrame, metric: str, lr: float) -> str:
    cell = layers[layers.lr == lr]
    peaks, ratios, noisy = {}, {}, []
    for domain, df in cell.groupby("domain"):
        per_seed = df.pivot_table(index="layer", columns="seed", values=metric)
        profile = per_seed.mean(axis=1)
        peaks[domain] = _peak_range(profile)
        early, late = _thirds(profile)
        ratios[domain] = late / early if early else float("nan")
        if per_seed.shape[1] > 1:
            diffs = [np.subtract(*reversed(_thirds(per_seed[s]))) for s in per_seed]
            if abs(np.mean(diffs)) <= 2 * np.std(diffs, ddof=1):
                noisy.append(domain)
    label = LABELS.get(metric, metric)
    same_peak = len(set(peaks.values())) == 1
    where = (f"layers {peaks[next(iter(peaks))][0]}–{peaks[next(iter(peaks))][1]} for all domains" if same_peak
             else "; ".join(f"{d}: layers {a}–{b}" for d, (a, b) in peaks.items()))
    ratio_text = ", ".join(f"{d} {r:.2f}×" for d, r in ratios.items())
    text = (f"LR {lr_label(lr)}: largest {label} at {where}. Last third of the layers vs first third: "
            f"{ratio_text}.")
    seeds = cell.seed.nunique()
    if seeds > 1:
        text += (f" With {seeds} seeds, the late/early difference is within seed noise (≤ 2 s.d.) for "
                 f"{', '.join(noisy) or 'no domain'}.")
    else:
        text += " One seed: seed-to-seed noise is not estimated (add seeds to grid.seeds)."
    return text


def describe(layers: pd.DataFrame, metric: str) -> dict[str, str]:
    """{figure name: sentence} for the per-LR profile figures of the report (`metric`: the seed figure's)."""
    notes = {}
    for lr in sorted(layers.lr.unique()):
        for prefix, column in (("cross_domain", metric), ("fro", "fro"), ("rel_fro", "rel_fro"),
                               ("attention_share", "attention_share")):
            if column in layers:
                notes[f"{prefix}_lr={lr_label(lr)}"] = describe_lr(layers, column, lr)
    return notes
