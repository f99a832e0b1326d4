"""When does the locus form? Rank stability of the layer profile along a learning trajectory.

A cell's trajectory.parquet (stages/trajectory.py) holds, for every snapshot step, the per-layer
metrics of the adapter at that step. The layer profile of a metric at step t is the vector of its
values over layers; its agreement with the final profile is Spearman's rank correlation

    ρ_t = Pearson(rank(profile_t), rank(profile_final))        (Spearman 1904; ties: average ranks)

which asks only whether the *ordering* of layers matches — the question "where does fine-tuning
write?" — not whether magnitudes do (they keep growing during training). The locus has formed by
step N when ρ_t ≥ 0.9 for every snapshot t ≥ N (the final snapshot has ρ = 1 by definition).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from locus import io
from locus.core.ranking import cell_size_and_shape, domain_test, late_early_ratio, seed_stability, spearman
from locus.core.stats import CELL
from locus.layout import cell_dir, trajectory_cells
from locus.params import lr_label

THRESHOLD = 0.9


def rank_stability(table: pd.DataFrame, metric: str, by: list[str] | tuple = ()) -> pd.DataFrame:
    """One row per (by…, step): ρ of that snapshot's layer profile of `metric` with the last snapshot's.

    `table` has columns step, layer, `metric` (and the `by` columns, e.g. domain, lr, seed).
    """
    rows = []
    for keys, g in table.groupby(list(by), sort=True) if by else [((), table)]:
        keys = keys if isinstance(keys, tuple) else (keys,)
        profiles = g.pivot_table(index="layer", columns="step", values=metric, aggfunc="first")
        final = profiles[profiles.columns.max()]
        for step in profiles.columns:
            rows.append(dict(zip(by, keys)) | {"step": int(step), "rho": spearman(profiles[step], final)})
    return pd.DataFrame(rows, columns=[*by, "step", "rho"])


def formed_step(rho: pd.DataFrame, threshold: float = THRESHOLD) -> int | None:
    """The first snapshot step from which ρ stays ≥ threshold through the last snapshot (NaN counts
    as below); None when even the last one is below (a constant final profile)."""
    rho = rho.sort_values("step")
    # 1e-12: a ρ of exactly the threshold (e.g. 0.9 = 1 - 6·2/(5·24)) comes out as 0.8999999999999999
    below = rho["step"][~(rho["rho"] >= threshold - 1e-12)]
    later = rho["step"][rho["step"] > below.max()] if len(below) else rho["step"]
    return int(later.min()) if len(later) else None


def read_trajectories(params) -> pd.DataFrame:
    """Every analysed cell's trajectory.parquet with domain, lr, seed columns; empty when off."""
    frames = []
    for domain, lr, seed in trajectory_cells(params):
        path = cell_dir(params, domain, lr, seed) / "trajectory.parquet"
        if not path.exists():
            raise FileNotFoundError(
                f"{path}: missing for cell {domain}, lr={lr_label(lr)}, seed={seed} "
                f"(trajectory.domains lists {domain}; run `locus trajectory` for it)"
            )
        frames.append(io.read_parquet(path).assign(domain=domain, lr=lr, seed=seed))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def formation(table: pd.DataFrame, metric: str, threshold: float = THRESHOLD) -> pd.DataFrame:
    """Per cell: the step the locus formed (ρ ≥ threshold from then on), the last step, and that ratio."""
    rho = rank_stability(table, metric, CELL)
    rows = []
    for keys, g in rho.groupby(CELL, sort=True):
        last = int(g["step"].max())
        formed = formed_step(g, threshold)
        rows.append(
            dict(zip(CELL, keys))
            | {"formed_step": formed, "last_step": last, "fraction": formed / last if formed is not None else np.nan}
        )
    return pd.DataFrame(rows, columns=[*CELL, "formed_step", "last_step", "fraction"])


def seed_agreement(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (domain, lr, step): Spearman ρ of the layer ranking between seeds at that step (mean over
    seed pairs; locus.core.ranking.seed_stability) — how many steps a map needs before it repeats.
    `table` is read_trajectories' output (needs ≥ 2 seeds per domain and lr; NaN otherwise)."""
    rows = []
    for (domain, lr, step), g in table.groupby(["domain", "lr", "step"], sort=True):
        per_seed = g.pivot_table(index="layer", columns="seed", values=metric, aggfunc="first")
        rows.append({"domain": domain, "lr": lr, "step": int(step), "rho": seed_stability(per_seed)})
    return pd.DataFrame(rows, columns=["domain", "lr", "step", "rho"])


EARLY_STEP = 16  # the study's budget: where every shorter map in docs/findings.md stops


def milestones(steps) -> list[int]:
    """The snapshot steps a long run is read at: EARLY_STEP (when snapshotted), the snapshot nearest
    the middle of the run, and the last — deduplicated, in order."""
    steps = sorted({int(s) for s in steps})
    last = steps[-1]
    middle = min(steps, key=lambda s: (abs(s - last / 2), s))
    return sorted({s for s in (EARLY_STEP, middle, last) if s in steps})


def late_early_along(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (domain, lr, seed, step): the late/early ratio of that snapshot's layer profile
    (core.ranking.late_early_ratio: last third of the layers ÷ first third)."""
    rows = [
        dict(zip([*CELL, "step"], keys)) | {"ratio": late_early_ratio(g.set_index("layer")[metric])}
        for keys, g in table.groupby([*CELL, "step"], sort=True)
    ]
    return pd.DataFrame(rows, columns=[*CELL, "step", "ratio"])


def domains_at_equal_steps(table: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (lr, step) that every domain of the LR snapshotted: the domains compared at the same
    number of optimizer steps (their budgets may differ: one epoch of unequal splits). Columns: lr,
    step, domains, largest, smallest, ratio (largest ÷ smallest domain mean over layers and seeds),
    p_size, p_shape (core.ranking.domain_test over the cells at that step; NaN with one seed)."""
    rows = []
    for lr, g in table.groupby("lr", sort=True):
        domains = sorted(g.domain.unique())
        common = set.intersection(*(set(d.step) for _, d in g.groupby("domain")))
        for step in sorted(common):
            at = g[g.step == step]
            size, shape = cell_size_and_shape(at, metric)
            means = size[metric].groupby(level="domain").mean().sort_values()
            rows.append(
                {
                    "lr": lr,
                    "step": int(step),
                    "domains": len(domains),
                    "largest": means.index[-1],
                    "smallest": means.index[0],
                    "ratio": float(means.iloc[-1] / means.iloc[0]) if means.iloc[0] else np.nan,
                    "p_size": domain_test(size)[1],
                    "p_shape": domain_test(shape)[1],
                }
            )
    return pd.DataFrame(rows, columns=["lr", "step", "domains", "largest", "smallest", "ratio", "p_size", "p_shape"])
