"""Subspace similarity of the effective updates of different cells (Hu et al. 2021 §7.2).

For every pair of cells and every adapted module, φ = ‖U_aᵀ U_b‖²_F / k over the top-k left
singular vectors of the two ΔW = s·B·A (locus.core.effective.update_similarity): how much two domains,
learning rates or seeds write into the same output directions of that module. Pairs that differ
only in the seed give the noise floor to read domain pairs against; `baseline` = k/out is the
expectation for two random k-dim subspaces. Only the adapters are read (no base weights).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from itertools import combinations
from pathlib import Path

import numpy as np
import pandas as pd

from locus.core.effective import iter_updates, random_similarity, update_similarity
from locus.core.stats import CELL

CELL_PATH = re.compile(r"(?P<domain>[^/]+)/lr=(?P<lr>[^/]+)/seed=(?P<seed>-?\d+)/?$")


def cell_label(directory: str | Path) -> tuple[str, float, int]:
    """(domain, lr, seed) from a cell directory such as results/runs/cpp/lr=0.001/seed=0."""
    m = CELL_PATH.search(Path(directory).as_posix())
    if not m:
        raise ValueError(f"{directory}: not a cell directory (…/{{domain}}/lr={{lr}}/seed={{seed}})")
    return m["domain"], float(m["lr"]), int(m["seed"])


def similarity_table(
    cells: Mapping[tuple, str | Path] | Sequence[str | Path], k: int | None = None, side: str = "left"
) -> pd.DataFrame:
    """φ for every pair of cells × module.

    cells: {(domain, lr, seed): cell directory or adapter directory} (a cell directory means its
           adapter_final/), or a list of cell directories labelled by `cell_label`; k: directions compared (None: each module's adapter rank r).
    Returns one row per (pair, layer, block, module): domain_a, lr_a, seed_a, domain_b, lr_b,
    seed_b, layer, block, module, k (after capping at both numerical ranks), phi, baseline.
    Every adapter's thin SVDs are held in memory: (out+in)·r floats per module per cell.
    """
    if not isinstance(cells, Mapping):
        cells = {cell_label(d): d for d in cells}
    if len(cells) < 2:
        return pd.DataFrame(
            columns=[f"{c}_{s}" for s in "ab" for c in CELL] + ["layer", "block", "module", "k", "phi", "baseline"]
        )
    updates = {}
    for label, directory in cells.items():
        directory = Path(directory)
        adapter = directory / "adapter_final" if (directory / "adapter_final").is_dir() else directory
        updates[tuple(label)] = {path: (info, upd) for path, info, upd in iter_updates(adapter)}
    rows = []
    for a, b in combinations(updates, 2):
        if set(updates[a]) != set(updates[b]):
            raise ValueError(f"cells {a} and {b} adapt different modules")
        for path, (info, ua) in updates[a].items():
            ub = updates[b][path][1]
            kk = min(k or info["rank"], ua.rank, ub.rank)
            dim = ua.u.shape[0] if side == "left" else ua.vt.shape[1]
            rows.append(
                {
                    **{f"{c}_a": v for c, v in zip(CELL, a)},
                    **{f"{c}_b": v for c, v in zip(CELL, b)},
                    "layer": info["layer"],
                    "block": info["block"],
                    "module": info["module"],
                    "k": kk,
                    "phi": update_similarity(ua, ub, kk, side) if kk else np.nan,
                    "baseline": random_similarity(kk, dim) if kk else np.nan,
                }
            )
    return pd.DataFrame(rows)


def pair_kind(table: pd.DataFrame) -> pd.Series:
    """What a pair compares: 'domain', 'lr', 'seed' (differs only there) or 'mixed'."""
    diff = pd.DataFrame({c: table[f"{c}_a"] != table[f"{c}_b"] for c in CELL})
    kind = pd.Series("mixed", index=table.index)
    for c in CELL:
        kind[diff[c] & (diff.sum(axis=1) == 1)] = c
    return kind


def domain_matrix(table: pd.DataFrame) -> pd.DataFrame:
    """Mean φ over layers, modules and seeds for each (lr, domain pair) of same-LR, same-seed cells.

    Long form, both orders and the diagonal: lr, domain_a, domain_b, phi (diagonal: the mean
    φ between seeds of that domain when there are several seeds, else 1 — labelled by `diag`).
    """
    kind = pair_kind(table)
    cross = table[kind == "domain"]
    mean = cross.groupby(["lr_a", "domain_a", "domain_b"])["phi"].mean().reset_index()
    mean.columns = ["lr", "domain_a", "domain_b", "phi"]
    both = pd.concat([mean, mean.rename(columns={"domain_a": "domain_b", "domain_b": "domain_a"})])
    seeds = table[kind == "seed"].groupby(["lr_a", "domain_a"])["phi"].mean()
    domains = sorted(set(table.domain_a) | set(table.domain_b))
    diag = [
        {
            "lr": lr,
            "domain_a": d,
            "domain_b": d,
            "phi": seeds.get((lr, d), 1.0),
            "diag": "seed vs seed" if (lr, d) in seeds.index else "self",
        }
        for lr in sorted(set(table.lr_a))
        for d in domains
    ]
    return pd.concat([both.assign(diag="domain vs domain"), pd.DataFrame(diag)], ignore_index=True)
