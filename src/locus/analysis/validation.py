"""Targeted-layer validation of the layer map: layer ranking, arm layer sets, paired comparison, verdict.

The seed study reads LoRA's per-layer change as "which layers would have been most modified during
a full fine-tuning run", and a later version of it fine-tuned only the top-ranked layers to
validate the map — without a random-layer control and without seeds. Here that claim is a test:
if the map is predictive, adapters on the k top-ranked layers reach a lower eval loss than
adapters on k random layers, trained on the same data with the same budget, by more than the
seed-to-seed noise. Arms (params `validation.arms`): top, random0..random{R-1}, optionally bottom;
the all-layer arm is the grid cell at the same seed and learning rate.
"""

from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

# Written into arms.json so the file says how its random sets were drawn (draw_random_sets).
RANDOM_SETS = (
    "uniform k-subsets of all layers, seeded by (draw_seed, crc32(domain)); they may overlap the "
    "top-k set, because the control is the null hypothesis itself: any k layers"
)


def rank_layers(layers: pd.DataFrame, domain: str, lr: float, metric: str) -> pd.DataFrame:
    """One domain's layers ordered by `metric`, largest first: columns layer, value, n_seeds.

    The value is the metric's mean over the grid's seeds at learning rate `lr` (layers.parquet of
    stages/aggregate.py has one row per domain, lr, seed, layer). Ties go to the lower layer index
    so the order is deterministic.
    """
    rows = layers[(layers["domain"] == domain) & np.isclose(layers["lr"], lr)]
    if rows.empty:
        have = sorted(layers.loc[layers["domain"] == domain, "lr"].unique().tolist())
        raise ValueError(
            f"validation.learning_rate: no rows for domain {domain!r} at lr={lr:g} in the layer "
            f"table (its learning rates: {have or 'none'})"
        )
    per_layer = rows.groupby("layer")[metric].agg(["mean", "size"]).reset_index()
    per_layer.columns = ["layer", "value", "n_seeds"]
    return per_layer.sort_values(["value", "layer"], ascending=[False, True], kind="stable").reset_index(drop=True)


def draw_random_sets(layer_ids: list[int], k: int, draws: int, draw_seed: int, domain: str) -> list[list[int]]:
    """`draws` k-subsets of `layer_ids`, each uniform without replacement, from one numpy Generator.

    The Generator is seeded with (draw_seed, crc32(domain)): the same params give the same sets on
    any machine, and each domain gets its own sets. Nothing is excluded — a random set may overlap
    the top-k set, and two draws may coincide — because the control must be the null hypothesis
    itself ("the ranking carries no information", i.e. any k layers); drawing only from the
    non-top layers would make the control systematically worse than chance and flatter the map.
    """
    rng = np.random.default_rng([draw_seed, zlib.crc32(domain.encode("utf-8"))])
    return [sorted(int(x) for x in rng.choice(layer_ids, size=k, replace=False)) for _ in range(draws)]


def arm_layers(ranking: pd.DataFrame, k: int, arms: list[str], draw_seed: int, domain: str) -> dict[str, list[int]]:
    """{arm: sorted layer indices} for the arms in params order, plus "all"."""
    order = [int(x) for x in ranking["layer"]]
    if not k < len(order):
        raise ValueError(f"validation.k={k} must be smaller than the model's {len(order)} adapted layers")
    randoms = sorted((a for a in arms if a.startswith("random")), key=lambda a: int(a[len("random") :]))
    drawn = dict(zip(randoms, draw_random_sets(sorted(order), k, len(randoms), draw_seed, domain)))
    fixed = {"top": sorted(order[:k]), "bottom": sorted(order[-k:])}
    return {**{a: fixed[a] if a in fixed else drawn[a] for a in arms}, "all": sorted(order)}


def read_arm_layers(path: str | Path, arm: str) -> list[int]:
    """The layer list of `arm` in an arms.json written by `locus rank-layers`."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: not found (written by `locus rank-layers`)") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON: {e}") from None
    arms = doc.get("arms") if isinstance(doc, dict) else None
    if not isinstance(arms, dict) or arm not in arms:
        raise ValueError(f"{path}: no arm {arm!r} (arms: {sorted(arms or {})})")
    layers = arms[arm]
    if not layers or not all(isinstance(x, int) and x >= 0 for x in layers):
        raise ValueError(f"{path}: arms.{arm} must be a non-empty list of layer indices, got {layers!r}")
    return layers


def paired_differences(table: pd.DataFrame) -> pd.DataFrame:
    """Per domain, seed and random draw: diff = eval loss(random draw) − eval loss(top), same seed.

    `table` has one row per domain, arm, seed (eval_loss_after). Pairing by seed removes what the
    seed changes for every arm alike (data order, dropout); a positive diff means top-k did better.
    """
    top = table[table["arm"] == "top"][["domain", "seed", "eval_loss_after"]].rename(columns={"eval_loss_after": "top"})
    rnd = table[table["arm"].str.startswith("random")][["domain", "seed", "arm", "eval_loss_after"]]
    pairs = rnd.merge(top, on=["domain", "seed"], how="inner", validate="many_to_one")
    return pairs.assign(diff=pairs["eval_loss_after"] - pairs["top"]).rename(columns={"eval_loss_after": "random"})


def verdict(diffs, n_seeds: int) -> tuple[str, str]:
    """(outcome, sentence) from one domain's paired differences random − top over `n_seeds` seeds.

    Beyond noise means mean > 2·sd, where sd is the spread of the individual paired differences
    (over seeds and draws): a single top-vs-random comparison would then rarely come out the other
    way. A standard error sd/√n would be the textbook test, but the n differences are not
    independent (draws share a seed's top run, seeds share the drawn layer sets), so it would
    overstate precision; the stricter rule needs no independence assumption. With one seed the
    spread is over random draws only and seed noise is unmeasured, so no verdict is given.
    """
    d = np.asarray(diffs, dtype=float)
    n = len(d)
    mean, sd = float(d.mean()) if n else float("nan"), float(d.std(ddof=1)) if n > 1 else float("nan")
    if n_seeds < 2:
        return "undetermined", (
            f"cannot be judged: {n_seeds} seed, so seed noise is unmeasured "
            f"(random − top = {mean:+.3f} ± {sd:.3f} over draws, n={n}); add seeds"
        )
    spread = f"{abs(mean):.3f} ± {sd:.3f} (mean ± sd of random − top, n={n})"
    if mean > 2 * sd:
        return "predictive", f"top-k beats random-k by {spread} — beyond seed noise"
    if -mean > 2 * sd:
        return "anti-predictive", f"random-k beats top-k by {spread} — the map points away from the useful layers"
    return "within noise", (
        f"within noise: the map is not shown to be predictive (random − top = {mean:+.3f} ± {sd:.3f}, n={n})"
    )
