"""Layer profiles in words, each claim with its seed-noise verdict (locus.core.ranking).

Per domain: flat, or where it is higher or lower beyond the seed band; late vs early layers; how
stable the layer ranking is between seeds. Across domains: whether they differ in size or in shape
beyond what seeds alone produce (a permutation test over the cells).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from locus.core.ranking import (
    FLAT_SPREAD,
    PERMUTATIONS,
    cell_size_and_shape,
    domain_test,
    early_and_late,
    exact_labelling_count,
    late_early_ratio,
    profile_shape,
)
from locus.core.stats import LABELS
from locus.params import lr_label
from locus.report.words import COARSE, ONE_SEED, layer_span, layers_phrase, peak_window, ratio_words


def borderline_words(shape: dict) -> str:
    """'; borderline: …' when a profile_shape's verdict is near its cutoff (core.ranking.BORDERLINE),
    naming the quantity that decides it; '' otherwise."""
    if not shape["borderline"]:
        return ""
    if not shape["band_margin"] < shape["spread_margin"]:  # the spread decides (or one seed: no band)
        return f", borderline against the {FLAT_SPREAD:.0%} cutoff"
    return f"; borderline: its farthest layer is {shape['band_margin']:.2f}× its seed band from the median"


def shape_words(name: str, shape: dict, untested: str = f"; {ONE_SEED}") -> str:
    """One profile (a core.ranking.profile_shape) in words, after `name`: flat, higher or lower beyond
    the seed band, or (one seed) where it is highest, followed by `untested`."""
    spread = f"layer-to-layer spread {shape['spread']:.1%}" + borderline_words(shape)
    beyond = shape["peak_layers"] or shape["dip_layers"]
    if shape["flat"] and beyond:  # reproducible, but too small to call a locus
        where = (
            f"{layers_phrase(shape['peak_layers'])} higher"
            if shape["peak_layers"]
            else f"{layers_phrase(shape['dip_layers'])} lower"
        )
        return f"{name} nearly flat ({spread}), though {where} beyond the seed band"
    if shape["flat"]:
        why = f"no layer beyond the seed band, {spread}" if shape["seeds"] > 1 else spread
        return f"{name} flat ({why})"
    if shape["seeds"] == 1:
        a, b = peak_window(shape["mean"])
        return f"{name} highest at {layers_phrase(list(range(a, b + 1)))} ({spread}{untested})"
    if shape["peak_layers"]:
        return f"{name} highest at {layers_phrase(shape['peak_layers'])} (beyond the seed band; {spread})"
    return f"{name} lower at {layers_phrase(shape['dip_layers'])} (beyond the seed band; {spread})"


def describe_profile(layers: pd.DataFrame, lr: float, metric: str = "rel_fro") -> str:
    """The profile of each domain at one LR in words: flat or where it peaks (only a peak that beats
    the seed band is called one), late vs early layers with a seed-noise verdict, how stable the
    layer ranking is between seeds, and whether the domains differ (describe_domains)."""
    cell = layers[layers.lr == lr]
    early, late = early_and_late(cell.layer)  # the groups late_early_ratio compares, named in the sentence
    shapes, ratios, beyond, within = {}, {}, [], []
    for domain, df in cell.groupby("domain"):
        per_seed = df.pivot_table(index="layer", columns="seed", values=metric)
        shapes[domain] = profile_shape(per_seed)
        profile = shapes[domain]["mean"]
        ratios[domain] = late_early_ratio(profile)
        if per_seed.shape[1] > 1:
            diffs = per_seed.loc[late].mean() - per_seed.loc[early].mean()
            (beyond if abs(diffs.mean()) > 2 * diffs.std(ddof=1) else within).append(domain)
    parts = [f"{d} {ratio_words(r)}" for d, r in ratios.items()]
    text = (
        f"LR {lr_label(lr)}, {LABELS[metric]}: {'; '.join(shape_words(d, s) for d, s in shapes.items())}. "
        f"Late layers ({layer_span(late)}) vs early layers ({layer_span(early)}): {', '.join(parts)}."
    )
    seeds = cell.seed.nunique()
    if seeds > 1:
        text += (
            f" Over {seeds} seeds{COARSE if seeds == 2 else ''} the late−early difference exceeds 2× its "
            f"across-seed s.d. for {', '.join(beyond) or 'no domain'}"
            + (f"; within seed noise for {', '.join(within)}." if within else ".")
        )
        text += (
            " How stable is this map? Spearman ρ of the layer ranking between seeds: "
            + ", ".join(f"{d} {s['stability']:.2f}" for d, s in shapes.items())
            + " (1 = same order every seed; below 0.8 the ordering is mostly seed noise)."
        )
    else:
        text += " One seed: seed noise not estimated (add seeds to grid.seeds)."
    return text + describe_domains(cell, metric)


def _noise(p: float) -> str:
    if np.isnan(p):
        return "not tested (a value is missing)"
    if p < 0.05:
        return f"beyond seed noise ({'p < 0.001' if p < 0.001 else f'p = {p:.3f}'})"
    return f"within seed noise (p = {p:.2f})"


def labelling_words(per_cell: pd.DataFrame) -> str:
    """How domain_test drew the labellings of these cells: all of them (an exact p), or a sample."""
    exact = exact_labelling_count(per_cell)
    if exact is not None:
        return (
            f"every one of the {exact:,} distinct labellings of the domains within each seed, so p is exact "
            f"and cannot go below 1/{exact:,}"
        )
    return f"domain labels shuffled {PERMUTATIONS:,} times among the cells of each seed"


def describe_domains(cell: pd.DataFrame, metric: str) -> str:
    """Do the domains differ beyond seed noise? In size (each cell's mean over layers) and in shape
    (each cell's profile divided by that mean), by locus.core.ranking.domain_test over the cells of
    one LR; with one seed, the sizes are given and said to be untested; nothing with one domain."""
    size, shape = cell_size_and_shape(cell, metric)
    means = size[metric].groupby(level="domain").mean().sort_values()
    if len(means) < 2:
        return ""
    text = (
        f" Do the domains differ? In size (mean over layers), {means.index[-1]} is largest "
        f"({means.iloc[-1]:.3g}) and {means.index[0]} smallest ({means.iloc[0]:.3g}), "
        f"{means.iloc[-1] / means.iloc[0]:.2f}× apart"
    )
    if cell.seed.nunique() < 2:
        return f"{text}; {ONE_SEED}."
    _, p_size = domain_test(size)
    _, p_shape = domain_test(shape)
    return (
        f"{text}: {_noise(p_size)}; in shape (each profile ÷ its mean over layers): {_noise(p_shape)} "
        f"(permutation tests over the {len(size)} cells: {labelling_words(size)})."
    )
