"""Seed bands, flat vs peaked profiles and ranking stability on hand-made layer × seed tables."""

import numpy as np
import pandas as pd
import pytest

from locus.core.ranking import (
    BAND_Z,
    FLAT_SPREAD,
    banded_profiles,
    domain_test,
    profile_shape,
    seed_stability,
    smallest_domain_p,
    spearman,
)


def table(rows: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(rows, index=pd.Index(range(rows.shape[0]), name="layer"), columns=range(rows.shape[1]))


def test_spearman_hand_checked():
    assert spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3]))
    with pytest.raises(ValueError, match="different length"):
        spearman([1, 2], [1, 2, 3])


def test_a_peak_that_beats_the_seed_band_is_found_and_stable():
    rng = np.random.default_rng(0)
    profile = np.ones(12)
    profile[8:10] = 1.5
    shape = profile_shape(table(profile[:, None] + rng.normal(0, 0.01, (12, 3))))
    assert shape["peak_layers"] == [8, 9] and not shape["flat"] and shape["seeds"] == 3
    assert shape["stability"] > 0.3  # the two peak layers rank top in every seed


def test_seed_noise_alone_is_flat_with_an_unstable_ranking():
    rng = np.random.default_rng(1)
    shape = profile_shape(table(1 + rng.normal(0, 0.02, (30, 4))))
    assert shape["flat"] and shape["spread"] < FLAT_SPREAD
    assert abs(shape["stability"]) < 0.3


def test_one_seed_is_judged_by_spread_only():
    flat = profile_shape(table(np.linspace(1, 1.02, 10)[:, None]))
    steep = profile_shape(table(np.linspace(1, 3, 10)[:, None]))
    assert flat["flat"] and not steep["flat"] and steep["peak_layers"] == []
    assert np.isnan(seed_stability(table(np.linspace(1, 3, 10)[:, None])))


def test_a_verdict_carries_its_margin_and_reads_borderline_near_a_cutoff():
    """margin = min(spread ÷ FLAT_SPREAD, farthest |layer − median| ÷ band): not flat exactly when > 1;
    within BORDERLINE of 1 the sentence says which cutoff it is near."""
    from locus.core.ranking import BORDERLINE
    from locus.report.profiles import shape_words

    seeds = np.array([-1.0, 0.0, 1.0]) * 1e-4  # the same small seed spread at every layer: band 3·1e-4

    def profile(step: float) -> pd.DataFrame:  # alternating layers ±step around 1: spread = step
        return table((1 + step * (-1.0) ** np.arange(20))[:, None] + seeds[None, :])

    clear, near, below = profile_shape(profile(0.10)), profile_shape(profile(0.052)), profile_shape(profile(0.045))
    assert clear["margin"] == pytest.approx(0.10 / FLAT_SPREAD) and not clear["borderline"] and not clear["flat"]
    assert near["margin"] == pytest.approx(1.04) and near["borderline"] and not near["flat"]
    assert below["margin"] == pytest.approx(0.9) and below["borderline"] and below["flat"]
    assert 1 / BORDERLINE <= 0.9 and BORDERLINE >= 1.04
    assert "layer-to-layer spread 5.2%, borderline against the 5% cutoff" in shape_words("d", near)
    assert "borderline" not in shape_words("d", clear)
    # the band decides: a wide seed spread, a steep profile — the farthest layer just clears its band
    wide = table(np.r_[np.ones(19), 1.6][:, None] + np.array([-0.3, 0.0, 0.3])[None, :])
    shape = profile_shape(wide)
    assert shape["band_margin"] < shape["spread_margin"] and shape["margin"] == pytest.approx(shape["band_margin"])
    band = 3 * 0.3 / np.sqrt(3)  # BAND_Z × s.d. 0.3 / √3 seeds: 0.6 is 1.15 bands
    assert shape["band_margin"] == pytest.approx(0.6 / band) and shape["borderline"]
    assert f"its farthest layer is {0.6 / band:.2f}× its seed band from the median" in shape_words("d", shape)


def test_the_report_sentence_calls_flat_flat_and_states_peaks_only_beyond_the_band():
    from locus.report.profiles import describe_profile

    rng = np.random.default_rng(0)  # pure noise still crosses a 3-s.e. band in a few % of draws
    rows = []
    for seed in range(3):
        for layer in range(12):
            rows.append(
                {
                    "domain": "peaked",
                    "lr": 0.001,
                    "seed": seed,
                    "layer": layer,
                    "rel_fro": (1.5 if layer in (8, 9) else 1.0) + rng.normal(0, 0.01),
                }
            )
            rows.append(
                {"domain": "noise", "lr": 0.001, "seed": seed, "layer": layer, "rel_fro": 1.0 + rng.normal(0, 0.02)}
            )
    text = describe_profile(pd.DataFrame(rows), 0.001)
    assert "noise flat (no layer beyond the seed band" in text
    assert "peaked highest at layers 8–9 (beyond the seed band" in text
    assert "How stable is this map? Spearman ρ of the layer ranking between seeds:" in text
    assert "coarse test" not in text
    one_seed = describe_profile(pd.DataFrame(rows).query("seed == 0"), 0.001)
    assert "one seed: not tested against seed noise" in one_seed and "noise flat" in one_seed
    two_seeds = describe_profile(pd.DataFrame(rows).query("seed < 2"), 0.001)
    assert "Over 2 seeds (a coarse test: the s.d. of two values has one degree of freedom) the late−early" in two_seeds


def test_ratios_and_layer_lists_in_words():
    from locus.report.words import layers_phrase, ratio_words

    assert ratio_words(1.034) == "1.03× more" and ratio_words(1 / 1.25) == "1.25× less"
    assert ratio_words(1.004) == ratio_words(0.996) == "about the same (1.00×)"
    assert ratio_words(1.00502) == "1.01× more" and ratio_words(1 / 1.00502) == "1.01× less"  # as printed
    assert layers_phrase([23]) == "layer 23" and layers_phrase([3, 4, 5, 9]) == "layers 3–5, 9"


def test_the_explorer_offers_metric_and_lr_dropdowns_legend_toggles_and_bands():
    from locus.report.charts import LABELS, explorer

    rows = [
        {
            "domain": d,
            "lr": lr,
            "seed": s,
            "layer": layer,
            "mean_abs": 1e-4 * (1 + layer + s),
            "mean_abs_per_lr": 0.4 + 0.01 * s,
            "rel_fro": 1e-3,
            "fro": 0.1,
            "attention_share": 0.3,
            "var_abs": 1e-9,
        }
        for d in ("cpp", "python")
        for lr in (0.0002, 0.001)
        for s in (0, 1)
        for layer in range(4)
    ]
    metrics = {(d, lr, s): {"optimizer_steps": 4} for d in ("cpp", "python") for lr in (0.0002, 0.001) for s in (0, 1)}
    spec = explorer(pd.DataFrame(rows), metrics)["explorer"].to_dict()
    params = {p["name"]: p for p in spec["params"]}
    assert params["metric"]["bind"]["options"] == [
        LABELS[m] for m in ("mean_abs", "mean_abs_per_lr", "rel_fro", "fro", "attention_share", "var_abs")
    ]
    assert params["lr"]["bind"]["options"] == ["0.0002", "0.001"]
    assert any(p.get("bind") == "legend" for p in spec["params"])
    band, line = spec["layer"]  # a hidden domain fades; a shown band stays translucent over the lines
    assert band["encoding"]["opacity"]["condition"]["value"] == 0.2 and "opacity" not in band["mark"]
    assert line["encoding"]["opacity"]["condition"]["value"] == 1.0
    data = next(iter(spec["datasets"].values()))
    first = next(
        r
        for r in data
        if r["domain"] == "cpp" and r["lr"] == "0.001" and r["layer"] == 2 and r["metric"] == LABELS["mean_abs"]
    )
    # seeds 3e-4 and 4e-4 at every layer: pooled s.e. of the mean √(5e-9 / 2) = 5e-5, band 3 × 5e-5
    assert first["value"] == pytest.approx(3.5e-4) and first["steps"] == 4
    assert first["low"] == pytest.approx(2e-4) and first["high"] == pytest.approx(5e-4)


def test_every_chart_shades_the_band_the_sentences_test_against():
    """One seed band: what the charts shade (banded_profiles) is profile_shape's band, pooled over
    layers (not each layer's min–max or s.d.), and a layer is called a peak exactly when its shaded
    band clears the profile's median layer."""
    rng = np.random.default_rng(3)
    rows = [
        {"domain": "d", "lr": 1e-3, "seed": s, "layer": layer, "m": (1.4 if layer == 5 else 1.0) + noise}
        for layer in range(10)
        for s, noise in enumerate(rng.normal(0, 0.05 if layer < 5 else 0.01, 3))
    ]
    long = pd.DataFrame(rows)
    shaded = banded_profiles(long, "m").set_index("layer")
    per_seed = long.pivot_table(index="layer", columns="seed", values="m")
    shape = profile_shape(per_seed)
    pooled_se = np.sqrt(per_seed.var(axis=1, ddof=1).mean() / 3)
    assert np.allclose(shaded.band, BAND_Z * pooled_se) and np.allclose(shape["band"], shaded.band)
    assert np.allclose(shaded.high - shaded.value, shaded.band) and (shaded.seeds == 3).all()
    clears = shaded.index[(shaded.low > shaded.value.median()) | (shaded.high < shaded.value.median())]
    assert shape["peak_layers"] == [5] and list(clears) == [5]
    one_seed = banded_profiles(long[long.seed == 0], "m")
    assert (
        one_seed.band.isna().all()
        and (one_seed.low == one_seed.value).all()
        and (one_seed.high == one_seed.value).all()
    )


def test_a_reproducible_but_tiny_difference_is_nearly_flat():
    from locus.report.profiles import describe_profile

    rows = [
        {
            "domain": "tiny",
            "lr": 0.001,
            "seed": s,
            "layer": layer,
            "rel_fro": (1.03 if layer >= 8 else 1.0) + 0.0001 * s,
        }
        for s in range(3)
        for layer in range(12)
    ]
    text = describe_profile(pd.DataFrame(rows), 0.001)
    assert "tiny nearly flat (layer-to-layer spread 1.4%), though layers 8–11 higher beyond the seed band" in text


def cells_table(values: np.ndarray, domains: str = "abcde") -> pd.DataFrame:
    """One row per (domain, seed) cell, seeds along the second axis of `values` (domains × seeds × features)."""
    d, s, f = values.shape
    index = pd.MultiIndex.from_product([list(domains[:d]), range(s)], names=["domain", "seed"])
    return pd.DataFrame(values.reshape(d * s, f), index=index)


def test_domain_test_statistic_and_p_by_hand():
    # two domains of two seeds, values a: 0, 1 | b: 3, 4: domain means 0.5 and 3.5, variance 4.5
    table = cells_table(np.array([[[0.0], [1.0]], [[3.0], [4.0]]]))
    statistic, p = domain_test(table)
    assert statistic == pytest.approx(4.5)
    # labels shuffle within each seed: swap neither, seed 0's, seed 1's or both; swapping both only
    # renames the domains (4.5 again), one swap gives means 2 and 2 (0): exactly 2 of 4 labellings
    assert p == 1 / 2
    assert np.isnan(domain_test(table.xs(0, level="seed", drop_level=False))[1])  # one seed: untestable
    assert np.isnan(domain_test(table.xs("a", level="domain", drop_level=False))[1])  # one domain
    missing = table.copy()
    missing.iloc[0, 0] = np.nan
    assert np.isnan(domain_test(missing)[1])  # a missing value is not a difference


def test_domains_apart_beyond_noise_are_found_and_noise_alone_is_not():
    rng = np.random.default_rng(0)
    steps = np.arange(5)[:, None, None]
    # each seed moves every domain alike (one initial adapter per seed): shuffling within a seed
    # keeps that out of the test, so a domain step 5× smaller than the seed effect is still found
    seed_effect = np.array([0.0, 10.0, -10.0])[None, :, None]
    _, p_apart = domain_test(cells_table(steps * 2.0 + seed_effect + rng.normal(0, 0.3, (5, 3, 1))))
    assert 0 < p_apart < 0.005
    _, p_seed_only = domain_test(cells_table(seed_effect + rng.normal(0, 0.3, (5, 3, 1))))
    assert p_seed_only > 0.05
    # pure noise: p spreads evenly over (0, 1], about 5% of draws below 0.05
    p_noise = [domain_test(cells_table(rng.normal(0, 1, (5, 3, 3))), permutations=400, seed=i)[1] for i in range(100)]
    assert 0.01 <= np.mean(np.array(p_noise) < 0.05) <= 0.15 and 0.35 < np.median(p_noise) < 0.65


def test_the_report_says_whether_domains_differ_beyond_seed_noise():
    from locus.report.profiles import describe_profile

    rng = np.random.default_rng(2)
    rows = [
        {"domain": d, "lr": 0.001, "seed": s, "layer": layer, "rel_fro": size * (1 + rng.normal(0, 0.01))}
        for d, size in (("big", 2.0), ("mid", 1.5), ("less", 1.2), ("small", 1.0))
        for s in range(3)
        for layer in range(8)
    ]
    text = describe_profile(pd.DataFrame(rows), 0.001)
    assert "In size (mean over layers), big is largest" in text and "small smallest" in text
    assert "2.00× apart: beyond seed noise (p = 0.00" in text
    assert "in shape (each profile ÷ its mean over layers): within seed noise" in text
    assert "permutation tests over the 12 cells" in text
    one_seed = describe_profile(pd.DataFrame(rows).query("seed == 0"), 0.001)
    assert "2.00× apart; one seed: not tested against seed noise." in one_seed


def test_the_seed_figures_and_the_effective_figures_shade_that_band():
    from locus.core.stats import STATISTICS
    from locus.report.charts import per_domain
    from locus.report.effective import profiles

    rng = np.random.default_rng(4)
    stats = {*STATISTICS, "rel_fro", "fro"}
    layers = pd.DataFrame(
        [
            {"domain": "d", "lr": 1e-3, "seed": s, "layer": layer, **{m: 1 + layer + rng.normal(0, 0.1) for m in stats}}
            for s in range(3)
            for layer in range(4)
        ]
    )
    expected = banded_profiles(layers, "mean_abs").set_index("layer")
    spec = per_domain(layers)["domain_d_lr=0.001"].to_dict()
    rows = [r for r in next(iter(spec["datasets"].values())) if r["statistic"] == "mean |Δ|"]
    got = np.array(sorted((r["layer"], r["low"], r["high"]) for r in rows))
    assert np.allclose(got[:, 1:], expected[["low", "high"]].to_numpy())
    expected = banded_profiles(layers, "rel_fro").set_index("layer")
    spec = profiles(layers)["effective_profile_lr=0.001"].to_dict()
    rows = [r for data in spec["datasets"].values() for r in data if r["value"] == pytest.approx(expected.value[2])]
    assert rows and all(r["low"] == pytest.approx(expected.low[2]) for r in rows)


def test_the_page_states_the_smallest_p_the_seeds_allow_and_domain_test_reaches_it():
    from locus.params import Params
    from locus.stages.report import noise_paragraph

    grid = {"domains": ["a", "b", "c"], "learning_rates": [0.001]}
    text = noise_paragraph(Params.model_validate({"grid": grid | {"seeds": [0, 1]}}))
    assert "with 2 seeds of 3 domains its p cannot go below 0.17" in text  # 3!² labellings / 3! renamings
    assert "One seed: no seed band" in noise_paragraph(Params.model_validate({"grid": grid | {"seeds": [0]}}))
    apart = cells_table(np.array([[[0.0], [0.1]], [[5.0], [5.1]], [[10.0], [10.1]]]))
    assert domain_test(apart)[1] == pytest.approx(1 / 6)  # enumerated: exactly the floor, never below


def brute_force_p(table: pd.DataFrame) -> float:
    """Every within-seed labelling of a table, renamings included: the definition domain_test's p follows."""
    from itertools import permutations, product

    codes, _ = pd.factorize(table.index.get_level_values("domain"))
    seeds = table.index.get_level_values("seed")
    blocks = [np.flatnonzero(seeds == s) for s in seeds.unique()]
    values = table.to_numpy()

    def statistic(labels):
        return np.mean(np.var([values[labels == d].mean(axis=0) for d in np.unique(labels)], axis=0, ddof=1))

    observed, reached, total = statistic(codes), 0, 0
    for orders in product(*[list(permutations(codes[cells])) for cells in blocks]):
        labels = codes.copy()
        for cells, order in zip(blocks, orders):
            labels[cells] = order
        reached += statistic(labels) >= observed * (1 - 1e-9)
        total += 1
    return reached / total


@pytest.mark.parametrize("shape", [(3, 2, 1), (4, 2, 3), (3, 3, 2)])
def test_few_labellings_are_enumerated_exactly(shape):
    rng = np.random.default_rng(sum(shape))
    table = cells_table(rng.normal(0, 1, shape) + np.arange(shape[0])[:, None, None] * 0.5)
    assert domain_test(table)[1] == pytest.approx(brute_force_p(table), abs=1e-12)
    assert domain_test(table, seed=1)[1] == domain_test(table, seed=2)[1]  # exact: no sampling left
    incomplete = table.drop(index=(table.index[0]))  # one cell missing: every labelling enumerated
    assert domain_test(incomplete)[1] == pytest.approx(brute_force_p(incomplete), abs=1e-12)


def test_p_is_never_below_the_floor_the_grid_allows():
    # 5 domains × 2 seeds: 120 labellings up to renaming; far apart, p is exactly 1/120, not 1/5,001
    apart = cells_table(np.arange(5.0)[:, None, None] * 10 + np.array([0.0, 0.1])[None, :, None])
    assert domain_test(apart)[1] == pytest.approx(smallest_domain_p(5, 2)) == pytest.approx(1 / 120)
    # 5 × 4 seeds: 120³ labellings, too many to enumerate: sampled, p ≥ 1/(shuffles + 1)
    many = cells_table(np.arange(5.0)[:, None, None] * 10 + np.arange(4.0)[None, :, None] / 10)
    assert domain_test(many, permutations=999)[1] == pytest.approx(1 / 1000)
