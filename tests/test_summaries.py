import numpy as np
import pandas as pd

from locus.summaries import describe, describe_lr


def layers_table(seeds=(0,), noise=0.0, slope=1.0):
    rng = np.random.default_rng(0)
    rows = []
    for domain in ("a", "b"):
        for seed in seeds:
            for layer in range(12):
                value = 1.0 + slope * layer / 11 + noise * rng.normal()
                rows.append({"domain": domain, "lr": 0.001, "seed": seed, "layer": layer, "mean_abs": value})
    return pd.DataFrame(rows)


def test_peak_and_ratio_come_from_the_data():
    text = describe_lr(layers_table(), "mean_abs", 0.001)
    assert "layers 7–11 for all domains" in text
    # last third (layers 8-11) vs first third (0-3): (1 + 9.5/11) / (1 + 1.5/11) = 1.64
    assert "a 1.64×" in text and "One seed" in text


def test_seed_noise_is_judged():
    clear = describe_lr(layers_table(seeds=(0, 1, 2), noise=0.01), "mean_abs", 0.001)
    assert "within seed noise (≤ 2 s.d.) for no domain" in clear
    noisy = describe_lr(layers_table(seeds=(0, 1, 2), noise=5.0, slope=0.0), "mean_abs", 0.001)
    assert "within seed noise (≤ 2 s.d.) for a, b" in noisy


def test_describe_keys():
    notes = describe(layers_table(), "mean_abs")
    assert set(notes) == {"cross_domain_lr=0.001"}
