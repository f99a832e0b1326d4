"""The methods comparison: every method's cells on the scales they share (params `methods`).

Written by `locus aggregate` beside layers.parquet when `methods` holds more than the main method:

methods_layers.parquet  per (method, kind, domain, lr, seed, layer):
                        fro, rel_fro, attention_share, attention_w0_share — the layer's stacked ΔW
                        and attention's part of its ‖ΔW‖²_F and of ‖W₀‖²_F over the modules the
                        method adapts (locus.core.effective.layer_effective) for the weight-space methods (LoRA at any rank, DoRA, IA³,
                        full fine-tuning from the full_ft arm); NaN for prefix tuning, which changes no weight;
                        added_fro, added_rel — prefix tuning's ‖ΔP‖_F of the layer's keys and values
                        stacked (its map), and that ÷ ‖P(init)‖_F (NaN from a zero start, and for
                        the other methods);
                        rep_change, rep_change_local — 1 − CKA of the layer's hidden states, base vs
                        tuned, end to end and layer alone (locus.analysis.representation): the scale
                        every adapter method shares (not measured for full FT, which has no adapter)
methods_runs.parquet    per (method, kind, domain, lr, seed): trainable parameters, steps, eval loss
                        before and after, train seconds
methods_evaluation.parquet (evaluation.domains non-empty) the cross-domain eval table of
                        locus.analysis.evaluation for every method's cells, with a method column:
                        Δ eval loss against the base model, in domain (gain) and off domain (forgetting)
methods_rho.parquet     per (domain, seed pair, metric, method/LR a, method/LR b): Spearman ρ of the
                        two layer profiles of the same metric (like for like). Different methods are
                        paired at the same seed (same data order); the same method and LR at two
                        different seeds gives its seed-to-seed ρ, the ceiling a cross-method ρ is read against.
"""

from __future__ import annotations

from itertools import combinations

import numpy as np
import pandas as pd

from locus import io
from locus.core.effective import layer_effective
from locus.core.ranking import spearman
from locus.core.stats import CELL, REPRESENTATION

FULL_FT = "full_ft"  # the full fine-tuning arm, a method of the comparison (runs/{domain}/full_ft/)
SHARED = ("rel_fro", "rep_change", "rep_change_local")  # the metrics methods are compared on
KEYS = ["method", "kind", *CELL]


def _prefix_layers(effective: pd.DataFrame) -> pd.DataFrame:
    g = effective.assign(f2=effective.fro**2, w2=effective.w0_fro**2).groupby(CELL + ["layer"])[["f2", "w2"]].sum()
    rel = np.sqrt(g.f2 / g.w2.where(g.w2 > 0))  # NaN where the prefix started at zero
    return pd.DataFrame({"added_fro": np.sqrt(g.f2), "added_rel": rel}).reset_index()


def method_layers(params, method: str) -> pd.DataFrame:
    """One method's cells as layer tables (the module docstring's columns), read through the grid's
    cell reader (locus.analysis.grid.read_grid) for that method's params."""
    from locus.analysis.grid import read_grid

    resolved, kind = params.for_method(method), params.method_kind(method)
    effective = read_grid(resolved, "effective.parquet")
    table = _prefix_layers(effective) if kind == "prefix" else layer_effective(effective)
    rep = read_grid(resolved, "representation.parquet")
    table = table.merge(rep[CELL + ["layer", *REPRESENTATION]], on=CELL + ["layer"], validate="one_to_one")
    return table.assign(method=method, kind=kind)


def full_ft_layers(params) -> pd.DataFrame:
    """The full_ft arm's cells as the comparison's method "full_ft" (empty when the arm is off)."""
    from locus.analysis.experiments import read_full_ft
    from locus.analysis.full_ft import layer_table

    if not params.full_ft.domains:
        return pd.DataFrame()
    return layer_table(read_full_ft(params)).assign(method=FULL_FT, kind="full")


def layer_table(params) -> pd.DataFrame:
    frames = [method_layers(params, m) for m in params.methods] + [full_ft_layers(params)]
    table = pd.concat([f for f in frames if len(f)], ignore_index=True)
    columns = [*KEYS, "layer", "fro", "rel_fro", "attention_share", "attention_w0_share", "added_fro", "added_rel"]
    columns += REPRESENTATION
    return table.reindex(columns=columns).sort_values([*KEYS, "layer"], kind="stable").reset_index(drop=True)


RUN_COLUMNS = ("trainable_parameters", "optimizer_steps", "eval_loss_before", "eval_loss_after", "train_seconds")


def run_table(params) -> pd.DataFrame:
    """The module docstring's methods_runs: every method's cells' metrics.json (the grid's cell
    reader, locus.analysis.grid.read_metrics), then the full_ft arm's."""
    from locus.analysis.grid import read_metrics
    from locus.layout import full_ft_cells, full_ft_dir

    cells = [
        (m, params.method_kind(m), cell, metrics)
        for m in params.methods
        for cell, metrics in read_metrics(params.for_method(m)).items()
    ]
    cells += [
        (FULL_FT, "full", cell, io.read_json(full_ft_dir(params, *cell) / "metrics.json"))
        for cell in full_ft_cells(params)
    ]
    rows = [
        {"method": method, "kind": kind, "domain": domain, "lr": lr, "seed": seed}
        | {k: metrics.get(k) for k in RUN_COLUMNS}
        for method, kind, (domain, lr, seed), metrics in cells
    ]
    return pd.DataFrame(rows)


def rho_table(layers: pd.DataFrame) -> pd.DataFrame:
    """The module docstring's methods_rho: every pair of (method, LR) profiles of one metric, per
    domain — at the same seed across methods, at different seeds within one (method, LR)."""
    rows = []
    for metric in SHARED:
        for domain, d in layers.dropna(subset=[metric]).groupby("domain"):
            profiles = {
                key: p.set_index("layer")[metric].sort_index() for key, p in d.groupby(["method", "lr", "seed"])
            }
            for a, b in combinations(sorted(profiles, key=str), 2):
                same = a[:2] == b[:2]
                if same == (a[2] == b[2]):  # across methods: same seed; within one: different seeds
                    continue
                rows.append(
                    {"domain": domain, "metric": metric, "method_a": a[0], "lr_a": a[1], "method_b": b[0], "lr_b": b[1]}
                    | {"seed_a": a[2], "seed_b": b[2], "rho": spearman(profiles[a], profiles[b])}
                )
    return pd.DataFrame(rows)


def tables(params) -> dict[str, pd.DataFrame]:
    """{file stem: table} of the methods comparison; {} when `methods` holds the main method alone."""
    if len(params.methods) < 2:
        return {}
    layers = layer_table(params)
    out = {"methods_layers": layers, "methods_runs": run_table(params), "methods_rho": rho_table(layers)}
    if params.evaluation.domains:
        from locus.analysis.evaluation import cross_domain_table

        frames = [cross_domain_table(params.for_method(m)).assign(method=m) for m in params.methods]
        out["methods_evaluation"] = pd.concat(frames, ignore_index=True)
    return out


def expected_files(params) -> list[str]:
    if len(params.methods) < 2:
        return []
    names = ["methods_layers", "methods_runs", "methods_rho"] + (
        ["methods_evaluation"] if params.evaluation.domains else []
    )
    return [f"{n}.parquet" for n in names]
