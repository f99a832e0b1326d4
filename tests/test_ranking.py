"""Seed bands, flat vs peaked profiles and ranking stability on hand-made layer × seed tables."""

import numpy as np
import pandas as pd
import pytest

from locus.ranking import FLAT_SPREAD, profile_shape, seed_stability, spearman


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


def test_the_report_sentence_calls_flat_flat_and_states_peaks_only_beyond_the_band():
    from locus.charts_effective import describe_profile

    rng = np.random.default_rng(2)
    rows = []
    for seed in range(3):
        for layer in range(12):
            rows.append({"domain": "peaked", "lr": 0.001, "seed": seed, "layer": layer,
                         "rel_fro": (1.5 if layer in (8, 9) else 1.0) + rng.normal(0, 0.01)})
            rows.append({"domain": "noise", "lr": 0.001, "seed": seed, "layer": layer,
                         "rel_fro": 1.0 + rng.normal(0, 0.02)})
    text = describe_profile(pd.DataFrame(rows), 0.001)
    assert "noise flat (no layer beyond the seed band" in text
    assert "peaked highest at layers 8–9 (beyond the seed band" in text
    assert "How stable is this map? Spearman ρ of the layer ranking between seeds:" in text
    one_seed = describe_profile(pd.DataFrame(rows).query("seed == 0"), 0.001)
    assert "one seed: not tested against seed noise" in one_seed and "noise flat" in one_seed
