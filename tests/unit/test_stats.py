import numpy as np
import pytest

from locus.core.keys import lora_key, parse_key, weight_key
from locus.core.stats import delta_table, matrix_stats

KEY = "base_model.model.model.layers.{L}.{block}.{module}.lora_{M}.weight"


def test_matrix_stats_against_definitions():
    rng = np.random.default_rng(0)
    d = rng.normal(0.1, 2.0, size=(16, 33)).astype(np.float32)
    s = matrix_stats(d)
    x = [float(v) for v in d.ravel()]
    n = len(x)
    mean = sum(x) / n
    var = sum((v - mean) ** 2 for v in x) / n  # population variance, ddof=0
    mean_abs = sum(abs(v) for v in x) / n
    var_abs = sum((abs(v) - mean_abs) ** 2 for v in x) / n
    assert s["n"] == n
    assert s["mean"] == pytest.approx(mean, rel=1e-12)
    assert s["var"] == pytest.approx(var, rel=1e-12)
    assert s["mean_abs"] == pytest.approx(mean_abs, rel=1e-12)
    assert s["var_abs"] == pytest.approx(var_abs, rel=1e-12)


def test_one_parser_for_lora_tensors_and_base_weights():
    from locus.core.keys import adapter_module_path

    assert lora_key(KEY.format(L=12, block="self_attn", module="q_proj", M="A")) == {
        "layer": 12,
        "block": "attention",
        "module": "q_proj",
        "matrix": "A",
    }
    assert lora_key(KEY.format(L=0, block="mlp", module="down_proj", M="B"))["block"] == "mlp"
    with pytest.raises(ValueError, match="not a per-layer"):
        lora_key("base_model.model.lm_head.weight")
    assert weight_key("model.layers.3.self_attn.q_proj.weight") == {
        "layer": 3,
        "block": "attention",
        "module": "q_proj",
    }
    assert weight_key("layers.0.mlp.up_proj.weight")["block"] == "mlp"
    for not_a_base_weight in ("model.embed_tokens.weight", KEY.format(L=1, block="mlp", module="up_proj", M="A")):
        with pytest.raises(ValueError, match="not a per-layer module weight"):
            weight_key(not_a_base_weight)
    assert parse_key("model.norm.weight") is None
    key = KEY.format(L=2, block="self_attn", module="v_proj", M="B")
    assert adapter_module_path(key) == "model.layers.2.self_attn.v_proj"
    assert adapter_module_path("model.layers.2.self_attn.v_proj.weight") is None


def adapters(rng, layers=3):
    init, final = {}, {}
    for L in range(layers):
        for block, module in (("self_attn", "q_proj"), ("mlp", "up_proj")):
            for M, shape in (("A", (4, 8)), ("B", (12, 4))):
                k = KEY.format(L=L, block=block, module=module, M=M)
                init[k] = rng.normal(size=shape).astype(np.float32) if M == "A" else np.zeros(shape, np.float32)
                final[k] = init[k] + rng.normal(scale=0.01 * (L + 1), size=shape).astype(np.float32)
    return init, final


def test_delta_table_rows_and_values():
    rng = np.random.default_rng(1)
    init, final = adapters(rng)
    df = delta_table(init, final)
    assert len(df) == 3 * 2 * 2
    assert list(df.columns[:4]) == ["layer", "block", "module", "matrix"]
    row = df[(df.layer == 2) & (df.module == "up_proj") & (df.matrix == "B")].iloc[0]
    k = KEY.format(L=2, block="mlp", module="up_proj", M="B")
    expected = np.abs(final[k].astype(np.float64) - init[k])
    assert row["mean_abs"] == pytest.approx(expected.mean(), rel=1e-12)
    assert row["n"] == 48
    # lora_B starts at zero, so its delta is the final B itself.
    assert row["mean"] == pytest.approx(final[k].astype(np.float64).mean(), rel=1e-12)
    # Later layers moved more in this synthetic case; the table must show it.
    by_layer = df.groupby("layer")["mean_abs"].mean()
    assert by_layer.is_monotonic_increasing


def test_delta_table_refuses_mismatched_adapters():
    rng = np.random.default_rng(2)
    init, final = adapters(rng)
    final.pop(next(iter(final)))
    with pytest.raises(ValueError, match="different tensors"):
        delta_table(init, final)
    init, final = adapters(rng)
    k = next(iter(final))
    final[k] = final[k][:-1]
    with pytest.raises(ValueError, match="shape"):
        delta_table(init, final)
