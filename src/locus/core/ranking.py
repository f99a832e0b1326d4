"""Layer rankings and how far to trust them: one Spearman, the seed band, flat vs peaked profiles.

The seed band defined here is the one every chart shades and every claim about a layer tests against.

A layer profile is one number per layer (a metric averaged over a layer's matrices). Read from one
run it always has a highest layer; whether that peak means anything depends on how much the
profile moves when only the seed changes (LoRA's random A, dropout masks and data order). With
S ≥ 2 seeds the per-layer spread across seeds is measured directly:
  band          = BAND_Z · √(mean over layers of the across-seed variance) / √S: the standard error
                  of a layer's seed mean, its variance pooled over layers (with S = 2 seeds a single
                  layer's own s.d. has one degree of freedom), times 3 — a Bonferroni-style margin,
                  since ~30 layers are tested at once (2 s.e. would flag one noise layer in most runs)
  peak          = layers whose seed mean exceeds the profile's median layer by more than their band
                  (dip: falls below it by more than the band)
  flat          = no layer is more than its band away from the median, or (any number of seeds)
                  the layer-to-layer spread (s.d. / mean across layers) is under FLAT_SPREAD —
                  then a layer beyond its band is reproducible but too small to call a locus
  margin        = how far the flat / not-flat verdict is from its cutoffs: min(spread / FLAT_SPREAD,
                  largest |layer − median| / band) (one seed: spread / FLAT_SPREAD). A profile is
                  not flat exactly when margin > 1; within a factor BORDERLINE of 1 it is borderline.
  stability     = Spearman ρ of the layer ranking between every pair of seeds (mean over pairs):
                  1 = the same order every time; near 0 = the ranking is noise.
Across domains, whether they differ beyond seed noise is a permutation test over the cells
(domain_test): the domains' means spread more than when the domain labels are shuffled among the
cells of each seed, which keeps only what seeds alone produce.
"""

from __future__ import annotations

import math
from itertools import combinations, permutations, product

import numpy as np
import pandas as pd

BAND_Z = 3.0
# Below this layer-to-layer spread (s.d. / mean over layers) a profile is flat whatever the seeds say.
FLAT_SPREAD = 0.05
# A verdict whose margin (below) lies within this factor of 1 is borderline: a few percent more or
# less spread, or another seed, could flip it (3 of the study's 70 verdicts flipped with a seed subset).
BORDERLINE = 1.25


def early_and_late(layer_ids) -> tuple[np.ndarray, np.ndarray]:
    """(the first third of the layers, the last third): the groups late-vs-early ratios compare."""
    ids = np.sort(np.unique(layer_ids))
    third = max(1, len(ids) // 3)
    return ids[:third], ids[-third:]


def late_early_ratio(profile: pd.Series) -> float:
    """Mean of a layer profile over its last third of layers ÷ the mean over its first third."""
    early, late = early_and_late(profile.index)
    return float(profile.loc[late].mean() / profile.loc[early].mean())


def spearman(x, y) -> float:
    """Spearman's ρ of two equally long sequences: Pearson's r of their average ranks (ties share
    the mean rank); NaN when either is constant or shorter than 2."""
    rx, ry = pd.Series(np.asarray(x, np.float64)).rank(), pd.Series(np.asarray(y, np.float64)).rank()
    if len(rx) != len(ry):
        raise ValueError(f"profiles of different length: {len(rx)} and {len(ry)} layers")
    if len(rx) < 2 or rx.nunique() < 2 or ry.nunique() < 2:
        return float("nan")
    return float(np.corrcoef(rx, ry)[0, 1])


def critical_rho(n: int) -> float:
    """|ρ| above which a Spearman correlation over n layers is beyond chance at p ≈ 0.05, two-sided
    (ρ·√(n−1) is about standard normal when the rankings are unrelated)."""
    return 1.96 / np.sqrt(n - 1)


def seed_stability(per_seed: pd.DataFrame) -> float:
    """Mean Spearman ρ of the layer ranking over every pair of seeds (columns of a layer × seed
    table); NaN with one seed."""
    rhos = [spearman(per_seed[a], per_seed[b]) for a, b in combinations(per_seed.columns, 2)]
    return float(np.nanmean(rhos)) if rhos and not np.all(np.isnan(rhos)) else float("nan")


def seed_band(per_seed: pd.DataFrame) -> float:
    """The seed band of one profile (a layer × seed table): BAND_Z × the standard error of a layer's
    seed mean, its across-seed variance pooled over layers; NaN with one seed."""
    seeds = per_seed.shape[1]
    if seeds < 2:
        return float("nan")
    return float(BAND_Z * np.sqrt(per_seed.var(axis=1, ddof=1).mean() / seeds))


def banded_profiles(layers: pd.DataFrame, metric: str, by: tuple[str, ...] = ("domain", "lr")) -> pd.DataFrame:
    """Every profile of a long table (rows *by, seed, layer, metric; one profile per `by` group) as
    its seed mean per layer with the seed band that profile_shape's verdicts use. Columns: *by,
    layer, value, band, low, high (value ∓ band; value itself with one seed, where band is NaN), seeds."""
    frames = []
    for key, df in layers.groupby(list(by)):
        per_seed = df.pivot_table(index="layer", columns="seed", values=metric)
        band, mean = seed_band(per_seed), per_seed.mean(axis=1)
        half = 0.0 if np.isnan(band) else band
        frame = pd.DataFrame(
            {
                "layer": mean.index,
                "value": mean.values,
                "band": band,
                "low": mean.values - half,
                "high": mean.values + half,
                "seeds": per_seed.notna().sum(axis=1).values,
            }
        )
        frames.append(frame.assign(**dict(zip(by, key)))[[*by, *frame.columns]])
    columns = [*by, "layer", "value", "band", "low", "high", "seeds"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=columns)


def profile_shape(per_seed: pd.DataFrame) -> dict:
    """What a layer × seed table supports saying: {mean, band, spread, flat, peak_layers, dip_layers,
    stability, seeds, margin, spread_margin, band_margin, borderline}.

    peak_layers are the layers above the median layer by more than their seed band (empty with one
    seed: a peak cannot be told from noise then, unless the caller reports it as unverified)."""
    mean = per_seed.mean(axis=1)
    seeds = per_seed.shape[1]
    sd, level = float(mean.std(ddof=0)), float(mean.mean())
    # s.d./mean; a constant profile (all zero too) is flat: spread 0
    spread = 0.0 if sd == 0 else sd / level if level else float("nan")
    spread_margin = spread / FLAT_SPREAD
    if seeds > 1:
        band = pd.Series(seed_band(per_seed), index=mean.index)
        excess = mean - mean.median()
        peak = [int(layer) for layer in mean.index[excess > band]]
        dip = [int(layer) for layer in mean.index[excess < -band]]
        flat = spread < FLAT_SPREAD or not (peak or dip)
        band_margin = float((excess.abs() / band).max()) if band.iloc[0] > 0 else float("inf")
        margin = min(spread_margin, band_margin)
    else:
        band, peak, dip, flat = pd.Series(np.nan, index=mean.index), [], [], spread < FLAT_SPREAD
        band_margin, margin = float("nan"), spread_margin
    return {
        "mean": mean,
        "band": band,
        "spread": spread,
        "flat": bool(flat),
        "peak_layers": peak,
        "dip_layers": dip,
        "stability": seed_stability(per_seed),
        "seeds": seeds,
        "margin": margin,
        "spread_margin": spread_margin,
        "band_margin": band_margin,
        "borderline": bool(1 / BORDERLINE <= margin <= BORDERLINE),
    }


PERMUTATIONS = 5000
# Up to this many distinct labellings domain_test enumerates them all (an exact p) instead of sampling.
EXACT_LIMIT = 200_000


def cell_size_and_shape(cells: pd.DataFrame, metric: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What domain_test compares, from a long table of one LR (rows domain, seed, layer, metric):
    (size: each cell's mean over layers, one row per (domain, seed); shape: each cell's profile
    divided by that mean, one column per layer, a layer missing from any cell left out)."""
    size = cells.groupby(["domain", "seed"])[metric].mean()
    relative = cells[metric] / cells.groupby(["domain", "seed"])[metric].transform("mean")
    shape = cells.assign(relative=relative).pivot_table(index=["domain", "seed"], columns="layer", values="relative")
    return size.to_frame(), shape.dropna(axis=1)


def smallest_domain_p(domains: int, seeds: int) -> float:
    """The smallest p domain_test can give a complete grid: labels shuffle within each seed, so there
    are (D!)^S labellings, D! of them only renaming the domains (1/120 for 5 domains × 2 seeds)."""
    return 1 / math.factorial(domains) ** (seeds - 1)


def _arrangements(labels: np.ndarray) -> np.ndarray:
    """Every distinct order of one block's domain codes (a multiset permutation), one per row."""
    return np.array(sorted(set(permutations(labels.tolist()))), dtype=labels.dtype)


def _free_blocks(codes: np.ndarray, blocks: list[np.ndarray]) -> tuple[list[np.ndarray], int] | None:
    """(the seeds whose labels are permuted, how many distinct labellings that gives), or None when
    more than EXACT_LIMIT (then domain_test samples). In a complete grid (each seed holds every
    domain once) the first seed's labelling is kept as observed: the statistic is the same under a
    renaming of the domains, and each of the (D!)^(S−1) classes of D! renamings has exactly one
    member with that first block."""
    complete = all(len(np.unique(codes[cells])) == len(cells) == len(np.unique(codes)) for cells in blocks)
    free = blocks[1:] if complete else blocks
    if math.prod(math.factorial(len(cells)) for cells in free) > EXACT_LIMIT:  # an upper bound
        return None
    distinct = [  # multinomial: orders of a block's labels, repeats counted once
        math.factorial(len(cells)) // math.prod(math.factorial(int(k)) for k in np.bincount(codes[cells]))
        for cells in free
    ]
    return free, math.prod(distinct)


def _exact_labellings(codes: np.ndarray, blocks: list[np.ndarray]) -> np.ndarray | None:
    """Every distinct labelling the within-seed shuffle can produce (rows; _free_blocks), or None
    when there are more than EXACT_LIMIT."""
    if (found := _free_blocks(codes, blocks)) is None:
        return None
    free, _ = found
    orders = [_arrangements(codes[cells]) for cells in free]
    grid = np.tile(codes, (math.prod(len(o) for o in orders), 1))
    for index, combo in enumerate(product(*[range(len(o)) for o in orders])):
        for cells, order, k in zip(free, orders, combo):
            grid[index, cells] = order[k]
    return grid


def _blocks(per_cell: pd.DataFrame) -> tuple[np.ndarray, pd.Index, list[np.ndarray]]:
    """(domain codes, domains, the cell positions of each seed) of a (domain, seed)-indexed table."""
    codes, domains = pd.factorize(per_cell.index.get_level_values("domain"))
    seeds = per_cell.index.get_level_values("seed")
    return codes, domains, [np.flatnonzero(seeds == s) for s in seeds.unique()]


def exact_labelling_count(per_cell: pd.DataFrame) -> int | None:
    """How many labellings domain_test enumerates for these cells, or None when it samples them."""
    codes, domains, blocks = _blocks(per_cell)
    if len(domains) < 2 or len(blocks) < 2:
        return None
    found = _free_blocks(codes, blocks)
    return None if found is None else found[1]


def domain_test(per_cell: pd.DataFrame, permutations: int = PERMUTATIONS, seed: int = 0) -> tuple[float, float]:
    """(statistic, p): do the domains differ beyond seed noise?

    per_cell has one row per cell, indexed by (domain, seed), and one column per feature (one
    column: the cell's mean over layers; one per layer: its profile). The statistic is the variance
    across domains of the domain means, averaged over features. The cells of one seed share their
    initial adapter, so each seed is a block: the domain labels are shuffled among the cells of
    each seed, and an effect of the seed shared by every domain cancels out of the observed
    statistic and of every shuffle alike. Where the distinct labellings are few (120 for 5 domains
    × 2 seeds, 14,400 for 3 seeds; up to EXACT_LIMIT) every one is enumerated and p is the exact
    share whose statistic reaches the observed one — never below smallest_domain_p, the floor the
    grid allows. Otherwise `permutations` random shuffles, the observed labelling counted among
    them (Phipson & Smyth 2010: p ≥ 1/(n+1), never 0).
    (NaN, NaN) with one domain; p is NaN
    with one seed (domain and seed cannot be told apart), or when a value is missing."""
    codes, domains, blocks = _blocks(per_cell)
    values = per_cell.to_numpy(np.float64)
    sizes = np.bincount(codes)
    if len(domains) < 2:
        return float("nan"), float("nan")

    def statistic(labellings: np.ndarray) -> np.ndarray:  # (k, cells) domain codes -> (k,)
        onehot = np.eye(len(domains))[labellings]  # (k, cells, domains)
        means = np.einsum("kcd,cf->kdf", onehot, values) / sizes[None, :, None]  # shuffling keeps sizes
        return means.var(axis=1, ddof=1).mean(axis=1)

    observed = float(statistic(codes[None])[0])
    if len(blocks) < 2 or not np.isfinite(observed):
        return observed, float("nan")
    # labellings that only rename domains give the same statistic up to rounding: hence the 1e-9
    exact = _exact_labellings(codes, blocks)
    if exact is not None:
        reached = sum(
            int((statistic(batch) >= observed * (1 - 1e-9)).sum())
            for batch in np.array_split(exact, -(-len(exact) // 1000))
        )
        return observed, reached / len(exact)
    rng = np.random.default_rng(seed)
    reached = 0
    for start in range(0, permutations, 1000):  # bounded memory on large grids
        batch = np.tile(codes, (min(1000, permutations - start), 1))
        for cells in blocks:
            batch[:, cells] = rng.permuted(batch[:, cells], axis=1)
        reached += int((statistic(batch) >= observed * (1 - 1e-9)).sum())
    return observed, (reached + 1) / (permutations + 1)
