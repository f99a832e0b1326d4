"""Effective-update metrics against dense computations; scaling against PEFT; NF4 W₀ against Linear4bit;
the `effective` stage and the cross-cell similarity on PEFT adapters of the tiny model."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.numpy import load_file, save_file

from conftest import argv, build_tiny_model, cell_argv, on_cell, write_params
from locus.cli import main
from locus.core.effective import (
    random_similarity,
    scaling,
    subspace_similarity,
    thin_svd,
    update_metrics,
    update_similarity,
)
from locus.params import load

# (out, in, r): tall, wide, square, r > out, r > in, r > both, rank 1
SHAPES = [(12, 20, 4), (20, 12, 4), (8, 8, 8), (6, 30, 10), (30, 6, 10), (5, 7, 9), (64, 48, 16), (5, 7, 1)]


def dense_metrics(a, b, s, w0, r):
    dw = s * b.astype(np.float64) @ a.astype(np.float64)
    u, sig, vt = np.linalg.svd(dw)
    fro = np.linalg.norm(dw)
    out = {"fro": fro, "spectral": sig[0], "rel_fro": fro / np.linalg.norm(w0)}
    k = min(r, np.linalg.matrix_rank(dw))
    if k == 0:
        return out | {"stable_rank": np.nan, "effective_rank": np.nan, "amplification": np.nan, "numerical_rank": 0}
    p = sig[:k] / sig[:k].sum()
    return out | {
        "stable_rank": fro**2 / sig[0] ** 2,
        "effective_rank": np.exp(-(p * np.log(p)).sum()),
        "amplification": fro / np.linalg.norm(u[:, :k].T @ w0 @ vt[:k].T),
        "numerical_rank": k,
    }


def check(a, b, s, w0, r):
    got, want = update_metrics(thin_svd(a, b, s), w0, r=r), dense_metrics(a, b, s, w0, r)
    for key, value in want.items():
        if np.isnan(value):
            assert np.isnan(got[key]), key
        else:
            assert got[key] == pytest.approx(value, rel=1e-7, abs=1e-12), key


@pytest.mark.parametrize("out_dim, in_dim, r", SHAPES)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_dense_svd(out_dim, in_dim, r, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(r, in_dim)), rng.normal(size=(out_dim, r))
    check(a, b, 2.0, rng.normal(size=(out_dim, in_dim)), r)


@pytest.mark.parametrize("true_rank", [1, 2, 3])
def test_rank_deficient_b(true_rank):
    rng = np.random.default_rng(true_rank)
    b = rng.normal(size=(30, true_rank)) @ rng.normal(size=(true_rank, 8))  # r = 8, rank(B) < r
    a, w0 = rng.normal(size=(8, 40)), rng.normal(size=(30, 40))
    check(a, b, 0.5, w0, 8)
    m = update_metrics(thin_svd(a, b, 0.5), w0, r=8)
    assert m["numerical_rank"] == true_rank and 1 <= m["stable_rank"] <= m["effective_rank"] <= true_rank + 1e-9


def test_zero_b_is_no_update():
    """lora_B starts at zero: the initial adapter's effective update is exactly 0."""
    rng = np.random.default_rng(4)
    m = update_metrics(thin_svd(rng.normal(size=(4, 10)), np.zeros((6, 4)), 2.0), rng.normal(size=(6, 10)), r=4)
    assert m["fro"] == m["spectral"] == m["rel_fro"] == m["numerical_rank"] == 0
    assert np.isnan(m["stable_rank"]) and np.isnan(m["effective_rank"]) and np.isnan(m["amplification"])


def test_thin_svd_reconstructs_and_float32_w0():
    rng = np.random.default_rng(5)
    a, b = rng.normal(size=(4, 9)), rng.normal(size=(7, 4))
    upd = thin_svd(a.astype(np.float32), b.astype(np.float32), 0.5)
    np.testing.assert_allclose(
        upd.u @ np.diag(upd.sigma) @ upd.vt, 0.5 * b.astype(np.float32).astype(float) @ a.astype(np.float32), atol=1e-12
    )
    np.testing.assert_allclose(upd.u.T @ upd.u, np.eye(4), atol=1e-12)
    w0 = rng.normal(size=(7, 9))
    m32, m64 = update_metrics(upd, w0.astype(np.float32)), update_metrics(upd, w0.astype(np.float32).astype(float))
    assert m32["amplification"] == pytest.approx(m64["amplification"], rel=1e-5)
    assert m32["rel_fro"] == pytest.approx(m64["rel_fro"], rel=1e-6)


def test_scaling_rules():
    cfg = {"r": 16, "lora_alpha": 32}
    q = "model.layers.0.self_attn.q_proj"
    assert scaling(cfg, q) == 2.0 and scaling({**cfg, "use_rslora": True}, q) == 8.0
    patterned = {**cfg, "rank_pattern": {"q_proj": 4}, "alpha_pattern": {"layers.1.mlp.up_proj": 4}}
    assert scaling(patterned, q) == 8.0 and scaling(patterned, "model.layers.1.mlp.up_proj") == 0.25
    assert scaling(patterned, "model.layers.0.self_attn.k_proj") == 2.0
    assert scaling(patterned, "model.layers.11.mlp.up_proj") == 2.0  # "layers.1." must not match layer 11


@pytest.mark.parametrize("rslora", [False, True])
def test_scaling_matches_peft(tiny_model, rslora):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    config = LoraConfig(
        r=4,
        lora_alpha=8,
        target_modules=["q_proj", "up_proj", "down_proj"],
        use_rslora=rslora,
        rank_pattern={"q_proj": 2},
        alpha_pattern={"layers.1.mlp.up_proj": 3},
    )
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model), config)
    cfg = model.peft_config["default"].to_dict()
    layers = [
        (n.removeprefix("base_model.model."), m)
        for n, m in model.named_modules()
        if hasattr(m, "lora_A") and hasattr(m, "base_layer")
    ]
    assert len(layers) == 9
    for path, module in layers:
        assert scaling(cfg, path) == pytest.approx(module.scaling["default"]), path


def test_subspace_similarity_properties():
    rng = np.random.default_rng(6)
    q, _ = np.linalg.qr(rng.normal(size=(50, 8)))
    q2, _ = np.linalg.qr(rng.normal(size=(50, 8)))
    assert subspace_similarity(q, q) == pytest.approx(1.0)
    assert subspace_similarity(q, q, 3, 8) == pytest.approx(1.0)  # nested subspaces
    eye = np.eye(50)
    assert subspace_similarity(eye[:, :4], eye[:, 4:8]) == 0.0
    for i, j in [(5, 5), (3, 7), (8, 8)]:
        assert subspace_similarity(q, q2, i, j) == pytest.approx(subspace_similarity(q2, q, j, i))
        assert 0 <= subspace_similarity(q, q2, i, j) <= 1
    # invariant to the B->BG, A->G^-1 A reparametrisation; random subspaces average k/dim
    a, b, g = rng.normal(size=(4, 30)), rng.normal(size=(50, 4)), rng.normal(size=(4, 4))
    assert update_similarity(thin_svd(a, b), thin_svd(np.linalg.solve(g, a), b @ g), 4) == pytest.approx(1.0)
    phis = [subspace_similarity(*(np.linalg.qr(rng.normal(size=(50, 4)))[0] for _ in range(2))) for _ in range(400)]
    assert np.mean(phis) == pytest.approx(random_similarity(4, 50), rel=0.15)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CPU round trip vs GPU codes: the GPU suite's nf4 check")
def test_nf4_base_weights_match_linear4bit(tmp_path, tiny_model, arith_raw):
    """W₀ for QLoRA is the NF4-dequantized weight Linear4bit holds and computes with (identity in -> Wᵀ out)."""
    import bitsandbytes.functional as bnbf

    from locus.analysis.updates import BaseWeights
    from locus.training.modeling import load_base

    params = load(
        write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", quantization={"cpu_kernel": "bitsandbytes"})
    )
    assert params.quantization.method == "nf4" and params.quantization.double_quant
    model = load_base(params, tiny_model)
    with BaseWeights(tiny_model, params) as base:
        for name in ("model.layers.1.mlp.down_proj.weight", "model.layers.0.self_attn.k_proj.weight"):
            layer = model.get_submodule(name.removesuffix(".weight"))
            assert type(layer).__name__ == "Linear4bit"
            ours = base[name]
            held = bnbf.dequantize_4bit(layer.weight.data, layer.weight.quant_state).float().cpu().numpy()
            np.testing.assert_array_equal(ours, held)
            with torch.no_grad():
                eye = torch.eye(layer.in_features, dtype=torch.bfloat16, device=layer.weight.device)
                out = layer(eye).float().cpu().numpy()
            np.testing.assert_array_equal(out, ours.T)
            assert not np.array_equal(ours, load_file(tiny_model / "model.safetensors")[name])


def make_cell(tmp_path, tiny_model, params_file, name, seed, scale=0.05, b_init=None):
    """init-adapter through the CLI, then a 'trained' final adapter: random B (and a nudged A)."""
    cell = tmp_path / name
    assert main(argv("init-adapter", params=params_file, model=tiny_model, seed=seed, out=cell / "adapter_init")) == 0
    shutil.copytree(cell / "adapter_init", cell / "adapter_final")
    rng = np.random.default_rng(seed + 100)
    path = cell / "adapter_final" / "adapter_model.safetensors"
    tensors = load_file(path)
    for k, v in tensors.items():
        tensors[k] = (v + scale * rng.normal(size=v.shape)).astype(v.dtype)
    save_file(tensors, path)
    if b_init is not None:
        init = cell / "adapter_init" / "adapter_model.safetensors"
        save_file(
            {
                k: (v + b_init * rng.normal(size=v.shape).astype(v.dtype) if ".lora_B." in k else v)
                for k, v in load_file(init).items()
            },
            init,
        )
    return cell


def test_stage_end_to_end(tmp_path, tiny_model, arith_raw):
    from locus.analysis.updates import BaseWeights

    params_file = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res")  # NF4, r=4, alpha=8
    cell = make_cell(tmp_path, tiny_model, params_file, "c", seed=0)
    assert not any(
        v.any() for k, v in load_file(cell / "adapter_init" / "adapter_model.safetensors").items() if ".lora_B." in k
    )
    out = cell / "effective.parquet"
    on_cell("effective", params_file, cell, model=tiny_model, out=out)
    df = pd.read_parquet(out)
    assert len(df) == 3 * 6 and (df["rank"] == 4).all() and (df["scaling"] == 2.0).all()
    assert set(df.block) == {"attention", "mlp"} and (df.numerical_rank == 4).all()
    adapter = load_file(cell / "adapter_final" / "adapter_model.safetensors")
    with BaseWeights(tiny_model, load(params_file)) as base:
        for row in df.itertuples():
            block = "self_attn" if row.block == "attention" else "mlp"
            prefix = f"base_model.model.model.layers.{row.layer}.{block}.{row.module}"
            w0 = base[f"model.layers.{row.layer}.{block}.{row.module}.weight"].astype(np.float64)
            want = dense_metrics(adapter[f"{prefix}.lora_A.weight"], adapter[f"{prefix}.lora_B.weight"], 2.0, w0, 4)
            for key, value in want.items():
                assert getattr(row, key) == pytest.approx(value, rel=1e-5), (prefix, key)
    # without --init (the argument the seed workflow had: --adapter) the same table
    assert (
        main(
            argv(
                "effective",
                params=params_file,
                model=tiny_model,
                adapter=cell / "adapter_final",
                out=tmp_path / "e2.parquet",
            )
        )
        == 0
    )
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "e2.parquet"), df)


def test_nonzero_init_and_sharded_model(tmp_path, arith_raw, capsys):
    from transformers import AutoModelForCausalLM

    model_dir = build_tiny_model(tmp_path / "m", layers=2)
    sharded = tmp_path / "sharded"
    AutoModelForCausalLM.from_pretrained(model_dir).save_pretrained(sharded, max_shard_size="100KB")
    assert (sharded / "model.safetensors.index.json").exists() and not (sharded / "model.safetensors").exists()
    params_file = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", quantization={"method": "none"})
    cell = make_cell(tmp_path, model_dir, params_file, "c", seed=1, b_init=0.01)
    tables = []
    for model in (model_dir, sharded):
        out = tmp_path / f"{model.name}.parquet"
        on_cell("effective", params_file, cell, model=model, out=out)
        tables.append(pd.read_parquet(out))
    pd.testing.assert_frame_equal(tables[0], tables[1])
    assert "non-zero" in capsys.readouterr().out
    init, final = (load_file(cell / f"adapter_{n}" / "adapter_model.safetensors") for n in ("init", "final"))
    p = "base_model.model.model.layers.1.mlp.up_proj.lora_"
    dw = 2.0 * (
        final[p + "B.weight"].astype(float) @ final[p + "A.weight"]
        - init[p + "B.weight"].astype(float) @ init[p + "A.weight"]
    )
    row = tables[0].query("layer == 1 and module == 'up_proj'").iloc[0]
    assert row.fro == pytest.approx(np.linalg.norm(dw), rel=1e-9)
    assert row.numerical_rank == 8  # rank ≤ 2r when the initial ΔW is not zero


def test_similarity_table(tmp_path, tiny_model, arith_raw):
    from locus.core.similarity import cell_label, domain_matrix, pair_kind, similarity_table

    params_file = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", quantization={"method": "none"})
    a = make_cell(tmp_path / "runs" / "x" / "lr=0.001", tiny_model, params_file, "seed=0", seed=0)
    b = make_cell(tmp_path / "runs" / "y" / "lr=0.001", tiny_model, params_file, "seed=0", seed=1)
    c = tmp_path / "runs" / "x" / "lr=0.001" / "seed=1"
    shutil.copytree(a, c)  # a second "seed" identical to the first: φ = 1
    assert cell_label(c) == ("x", 0.001, 1)
    table = similarity_table([a, b, c], k=2)
    assert len(table) == 3 * 18 and (table.k == 2).all()
    kinds = pair_kind(table)
    assert sorted(kinds.unique()) == ["domain", "mixed", "seed"]
    assert np.allclose(table.phi[kinds == "seed"], 1.0)
    assert ((table.phi >= 0) & (table.phi <= 1 + 1e-12)).all() and (table.phi[kinds == "domain"] < 0.99).all()
    assert np.allclose(table.baseline[table.module == "q_proj"], 2 / 64)
    m = domain_matrix(table)
    assert set(zip(m.domain_a, m.domain_b)) == {("x", "x"), ("x", "y"), ("y", "x"), ("y", "y")}
    assert m.query("domain_a == 'x' and domain_b == 'x'").iloc[0].diag == "seed vs seed"
    full = similarity_table({("x", 0.001, 0): a, ("y", 0.001, 0): b / "adapter_final"})
    assert (full.k == 4).all() and json.loads((a / "adapter_final" / "adapter_config.json").read_text())["r"] == 4


def synthetic_modules(seeds=(0,), noise=0.0):
    """modules.parquet-like rows: relative change growing with depth (3× from first to last third)."""
    rng = np.random.default_rng(0)
    rows = []
    for domain in ("a", "b"):
        for seed in seeds:
            for layer in range(12):
                for block, module, w0 in (("attention", "q_proj", 2.0), ("mlp", "up_proj", 4.0)):
                    rel = (1 + 2 * (layer >= 8)) * 1e-3 * (1 + noise * rng.normal())
                    rows.append(
                        {
                            "domain": domain,
                            "lr": 0.001,
                            "seed": seed,
                            "layer": layer,
                            "block": block,
                            "module": module,
                            "fro": rel * w0,
                            "rel_fro": rel,
                        }
                    )
    return pd.DataFrame(rows)


def test_effective_charts_and_summaries():
    from locus.report import effective as ce

    mods = synthetic_modules()
    layers = ce.layer_effective(mods)
    assert layers.attention_w0_share.iloc[0] == pytest.approx(4 / 20) and layers.attention_share.iloc[
        0
    ] == pytest.approx(0.2)
    assert layers.rel_fro.iloc[0] == pytest.approx(1e-3)
    sim = pd.DataFrame(
        {
            "domain_a": ["a"] * 2,
            "lr_a": [0.001] * 2,
            "seed_a": [0] * 2,
            "domain_b": ["b"] * 2,
            "lr_b": [0.001] * 2,
            "seed_b": [0] * 2,
            "layer": [0, 1],
            "block": ["mlp"] * 2,
            "module": ["up_proj"] * 2,
            "k": [4] * 2,
            "phi": [0.3, 0.5],
            "baseline": [0.01] * 2,
        }
    )
    charts, notes = ce.figures(mods, sim)
    assert (
        set(charts)
        == set(notes)
        == {
            "effective_profile_lr=0.001",
            "effective_heatmap",
            "effective_attention_lr=0.001",
            "effective_similarity_lr=0.001",
        }
    )
    for chart in charts.values():
        chart.to_dict()
    assert "Late layers (8–11) vs early layers (0–3): a 3.00× more, b 3.00× more" in notes["effective_profile_lr=0.001"]
    one_pair = notes["effective_similarity_lr=0.001"]  # two domains: one pair, no most/least
    assert "a and b share ΔW's top directions with φ = 0.40" in one_pair and "most" not in one_pair
    assert one_pair.endswith("; one seed: not tested against seed noise.")
    third = sim.assign(domain_b="c", phi=[0.1, 0.1])
    three = ce.summaries(mods, pd.concat([sim, third]))["effective_similarity_lr=0.001"]
    assert "most for a–b (φ = 0.40) and least for a–c (φ = 0.10)" in three
    assert "20% of ‖ΔW‖²_F" in notes["effective_attention_lr=0.001"]
    noisy = ce.summaries(synthetic_modules(seeds=(0, 1, 2), noise=0.05))["effective_profile_lr=0.001"]
    assert "exceeds 2× its across-seed s.d. for a, b" in noisy
    assert "one seed: not tested against seed noise" in notes["effective_heatmap"]
    assert "20% share of ‖W₀‖²_F (one seed: not tested against seed noise)" in notes["effective_attention_lr=0.001"]


def test_module_and_attention_sentences_say_whether_every_seed_agrees():
    from locus.report import effective as ce

    mods = synthetic_modules(seeds=(0, 1))
    mods.loc[mods.module == "up_proj", "rel_fro"] *= 2  # up_proj changes twice as much in every seed
    mods["fro"] = mods.rel_fro * np.where(mods.module == "up_proj", 4.0, 2.0)
    agree = ce.describe_modules(mods, 0.001)
    assert (
        "largest in up_proj" in agree
        and "smallest in q_proj" in agree
        and agree.endswith("the same two in every seed.")
    )
    flipped = mods.copy()
    seed1 = flipped.seed == 1
    flipped.loc[seed1, "rel_fro"] = np.where(flipped[seed1].module == "up_proj", 1e-4, 1e-2)
    assert "not the same two in every seed: seed noise" in ce.describe_modules(flipped, 0.001)
    layers = ce.layer_effective(mods)
    attention = ce.describe_attention(layers, 0.001)
    assert "across seeds (so in every seed)" in attention, attention
    mixed = ce.layer_effective(
        pd.concat([mods[mods.seed == 0], flipped[flipped.seed == 1].assign(fro=lambda d: d.rel_fro)])
    )
    assert "not in every seed" in ce.describe_attention(mixed, 0.001)


def test_w0_quantized_once_is_what_training_computes_with(tmp_path, tiny_model, arith_raw, capsys):
    """`locus quantize-base` stores, per NF4 layer, the weight Linear4bit multiplies by; effective
    reads it (--w0) and gets the table the per-cell round trip gives; a file made for other
    quantization settings is refused in one line."""
    import bitsandbytes.functional as bnbf
    from safetensors import safe_open
    from safetensors.torch import load_file as load_torch

    from locus.analysis.updates import BaseWeights
    from locus.training.modeling import load_base

    params_file = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res")  # NF4, double quant
    w0 = tmp_path / "base-w0.safetensors"
    assert main(argv("quantize-base", params=params_file, model=tiny_model, out=w0)) == 0
    on_gpu = torch.cuda.is_available()  # then quantize-base and the loaded Linear4bit ran on the GPU
    stored = load_torch(w0)  # bfloat16, which numpy lacks
    assert len(stored) == 3 * 7  # every linear layer of the 3 decoder layers, not only the adapted ones
    with safe_open(w0, "np") as f:
        assert f.metadata()["device"] == ("cuda:0" if torch.cuda.is_available() else "cpu")
    bnb_params = load(
        write_params(tmp_path / "b.yaml", arith_raw, tmp_path / "res", quantization={"cpu_kernel": "bitsandbytes"})
    )
    model = load_base(bnb_params, tiny_model)
    with BaseWeights(tiny_model, load(params_file)) as round_trip:
        for name, values in stored.items():
            layer = model.get_submodule(name.removesuffix(".weight"))
            held = bnbf.dequantize_4bit(layer.weight.data, layer.weight.quant_state).float().cpu().numpy()
            assert values.dtype == torch.bfloat16
            np.testing.assert_array_equal(values.float().numpy(), held, err_msg=name)
            if not on_gpu:  # CPU round trip vs GPU codes: the GPU suite's question, not a unit test's
                np.testing.assert_array_equal(round_trip[name], held, err_msg=name)

    cell = make_cell(tmp_path, tiny_model, params_file, "c", seed=0)
    on_cell("effective", params_file, cell, model=tiny_model, out=tmp_path / "a.parquet")
    on_cell("effective", params_file, cell, model=tiny_model, w0=w0, out=tmp_path / "b.parquet")
    if not on_gpu:
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "b.parquet"), pd.read_parquet(tmp_path / "a.parquet"))
    # a weight bitsandbytes leaves unquantized (lm_head; the tiny model ties it to the embedding) has
    # no entry: W₀ is that weight as NF4 training loads it, in the compute dtype
    with BaseWeights(tiny_model, load(params_file), w0) as base:
        raw = load_file(tiny_model / "model.safetensors")["model.embed_tokens.weight"]
        want = torch.from_numpy(raw).to(torch.bfloat16).float().numpy()
        np.testing.assert_array_equal(base["model.embed_tokens.weight"], want)

    single = write_params(tmp_path / "s.yaml", arith_raw, tmp_path / "res", quantization={"double_quant": False})
    capsys.readouterr()
    assert main(cell_argv("effective", single, cell, model=tiny_model, w0=w0, out=tmp_path / "c.parquet")) != 0
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(w0) in err and "rerun locus quantize-base" in err
    assert not (tmp_path / "c.parquet").exists()

    plain = write_params(tmp_path / "n.yaml", arith_raw, tmp_path / "res", quantization={"method": "none"})
    assert main(argv("quantize-base", params=plain, model=tiny_model, out=tmp_path / "none.safetensors")) == 0
    assert load_torch(tmp_path / "none.safetensors") == {}  # unquantized: W₀ is the model's own weight


def test_attention_share_by_layer_is_a_locus_only_beyond_the_seed_band():
    """The attention sentence words its by-layer profile like every other profile note: flat when no
    layer clears the seed band, a peak only where one does, and untested with one seed."""
    from locus.report.effective import describe_attention

    rng = np.random.default_rng(0)

    def layers(bump: float, seeds=(0, 1, 2)) -> pd.DataFrame:
        return pd.DataFrame(
            [
                {
                    "domain": "cpp",
                    "lr": 0.001,
                    "seed": seed,
                    "layer": layer,
                    "attention_share": 0.4 + (bump if layer >= 7 else 0.0) + 0.002 * rng.standard_normal(),
                    "attention_w0_share": 0.33,
                }
                for seed in seeds
                for layer in range(10)
            ]
        )

    assert "; by layer its share is flat (no layer beyond the seed band" in describe_attention(layers(0.0), 0.001)
    peaked = describe_attention(layers(0.2), 0.001)
    assert "; by layer its share is highest at layers 7–9 (beyond the seed band;" in peaked, peaked
    mlp_only = layers(0.0).assign(attention_share=0.0)
    assert describe_attention(mlp_only, 0.001).endswith(
        "; by layer its share is flat (no layer beyond the seed band, layer-to-layer spread 0.0%)."
    )
    one = describe_attention(layers(0.2, seeds=(0,)), 0.001)
    assert "by layer its share is highest at layer" in one and one.count("not tested against seed noise") == 1, one
