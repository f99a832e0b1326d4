"""Effective-update metrics checked against dense computations (PEFT-style: many small cases)."""

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import write_params
from locus.cli import main
from locus.effective import scaling, subspace_similarity, thin_svd, update_metrics
from locus.params import load

SHAPES = [(12, 20, 4), (20, 12, 4), (8, 8, 8), (6, 30, 10), (64, 48, 16), (5, 7, 1)]


def dense_metrics(a, b, s, w0):
    dw = s * b.astype(np.float64) @ a.astype(np.float64)
    sig = np.linalg.svd(dw, compute_uv=False)
    r = a.shape[0]
    u, _, vt = np.linalg.svd(dw)
    k = min(r, *dw.shape)
    fro = np.linalg.norm(dw)
    p = sig[sig > 1e-12 * sig[0]] / sig[sig > 1e-12 * sig[0]].sum()
    return {
        "fro": fro, "spectral": sig[0], "stable_rank": fro**2 / sig[0] ** 2,
        "effective_rank": np.exp(-(p * np.log(p)).sum()), "rel_fro": fro / np.linalg.norm(w0),
        "amplification": fro / np.linalg.norm(u[:, :k].T @ w0 @ vt[:k].T),
    }


@pytest.mark.parametrize("out_dim, in_dim, r", SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_dense_svd(out_dim, in_dim, r, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(r, in_dim)), rng.normal(size=(out_dim, r))
    w0 = rng.normal(size=(out_dim, in_dim))
    got = update_metrics(thin_svd(a, b, 2.0), w0)
    want = dense_metrics(a, b, 2.0, w0)
    for key, value in want.items():
        assert got[key] == pytest.approx(value, rel=1e-6), key


def test_rank_deficient_update():
    rng = np.random.default_rng(3)
    b = rng.normal(size=(30, 1)) @ rng.normal(size=(1, 8))  # rank-1 B with r = 8
    a = rng.normal(size=(8, 40))
    m = update_metrics(thin_svd(a, b, 1.0), rng.normal(size=(30, 40)))
    assert m["stable_rank"] == pytest.approx(1.0, rel=1e-9)
    assert m["effective_rank"] == pytest.approx(1.0, abs=1e-6)


def test_zero_b_is_no_update():
    """lora_B starts at zero: the initial adapter's effective update is exactly 0."""
    rng = np.random.default_rng(4)
    upd = thin_svd(rng.normal(size=(4, 10)), np.zeros((6, 4)), 2.0)
    m = update_metrics(upd, rng.normal(size=(6, 10)))
    assert m["fro"] == 0 and m["spectral"] == 0 and m["stable_rank"] == 0 and m["rel_fro"] == 0


def test_thin_svd_reconstructs_the_update():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(4, 9)), rng.normal(size=(7, 4))
    upd = thin_svd(a, b, 0.5)
    np.testing.assert_allclose(upd.u @ np.diag(upd.sigma) @ upd.vt, 0.5 * b @ a, atol=1e-12)
    np.testing.assert_allclose(upd.u.T @ upd.u, np.eye(4), atol=1e-12)


def test_scaling_rules():
    cfg = {"r": 16, "lora_alpha": 32}
    assert scaling(cfg, "model.layers.0.self_attn.q_proj") == 2.0
    assert scaling({**cfg, "use_rslora": True}, "model.layers.0.self_attn.q_proj") == 8.0
    patterned = {**cfg, "rank_pattern": {"q_proj": 4}, "alpha_pattern": {"layers.1.mlp.up_proj": 4}}
    assert scaling(patterned, "model.layers.0.self_attn.q_proj") == 8.0
    assert scaling(patterned, "model.layers.1.mlp.up_proj") == 0.25
    assert scaling(patterned, "model.layers.0.self_attn.k_proj") == 2.0


def test_subspace_similarity_properties():
    rng = np.random.default_rng(6)
    q, _ = np.linalg.qr(rng.normal(size=(50, 8)))
    assert subspace_similarity(q, q, 8) == pytest.approx(1.0)
    eye = np.eye(50)
    assert subspace_similarity(eye[:, :4], eye[:, 4:8], 4) == pytest.approx(0.0)
    q2, _ = np.linalg.qr(rng.normal(size=(50, 8)))
    assert subspace_similarity(q, q2, 5) == pytest.approx(subspace_similarity(q2, q, 5))
    assert 0 <= subspace_similarity(q, q2, 8) <= 1


def test_nf4_base_weights_match_linear4bit(tmp_path, tiny_model, arith_raw):
    """W₀ for QLoRA is the NF4-dequantized weight the Linear4bit layer actually uses."""
    import bitsandbytes.functional as bnbf

    from locus.modeling import load_base
    from locus.stages.effective import base_weights

    params = load(write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res"))
    model = load_base(params, tiny_model)
    name = "model.layers.1.mlp.down_proj.weight"
    weight = model.get_submodule(name.removesuffix(".weight")).weight
    in_model = bnbf.dequantize_4bit(weight.data, weight.quant_state).double().numpy()
    ours = base_weights(tiny_model, [name], params)[name]
    np.testing.assert_array_equal(ours, in_model)


def test_stage_on_a_trained_tiny_cell(tmp_path, tiny_model, arith_raw):
    from safetensors.numpy import load_file

    params_file = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", quantization={"method": "none"})
    common = ["--params", str(params_file)]
    data, cell = tmp_path / "data", tmp_path / "cell"
    assert main(["prepare-data", *common, "--domain", "arith", "--out", str(data)]) == 0
    assert main(["init-adapter", *common, "--model", str(tiny_model), "--seed", "0", "--out", str(cell / "adapter_init")]) == 0
    assert main(["train", *common, "--model", str(tiny_model), "--data", str(data), "--init", str(cell / "adapter_init"),
                 "--lr", "0.01", "--seed", "0", "--out", str(cell)]) == 0
    assert main(["effective", *common, "--model", str(tiny_model), "--adapter", str(cell / "adapter_final"),
                 "--out", str(cell / "effective.parquet")]) == 0
    df = pd.read_parquet(cell / "effective.parquet")
    assert len(df) == 3 * 6 and (df["rank"] == 4).all() and (df["scaling"] == 2.0).all()
    # Independent dense check of one module straight from the files.
    adapter = load_file(cell / "adapter_final" / "adapter_model.safetensors")
    base = load_file(tiny_model / "model.safetensors")
    prefix = "base_model.model.model.layers.2.self_attn.v_proj"
    dw = 2.0 * adapter[f"{prefix}.lora_B.weight"].astype(np.float64) @ adapter[f"{prefix}.lora_A.weight"]
    row = df[(df.layer == 2) & (df.module == "v_proj")].iloc[0]
    assert row.fro == pytest.approx(np.linalg.norm(dw), rel=1e-9)
    assert row.rel_fro == pytest.approx(np.linalg.norm(dw) / np.linalg.norm(base["model.layers.2.self_attn.v_proj.weight"]), rel=1e-6)
    assert (df.fro > 0).all()
