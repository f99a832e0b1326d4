"""Held-out evaluation and the full fine-tuning arm on the tiny random Llama (fast), plus their maths
checked against independent computations on hand-made inputs."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.numpy import load_file

from conftest import RECORDS, argv, write_params, write_raw
from locus import layout
from locus.analysis import evaluation, full_ft
from locus.cli import main
from locus.core.ranking import critical_rho
from locus.params import ParamsError, load
from locus.training import head, scoring

# A second domain for the cross-domain matrix: the same arithmetic, asked differently.
OTHER = [
    {"instruction": f"Compute {a} times {b}.", "response": f"{a} * {b} = {a * b}"}
    for a in range(1, 9)
    for b in range(1, 5)
]


@pytest.fixture
def two_domains(tmp_path, arith_raw):
    write_raw(arith_raw, "times", OTHER)
    params_file = write_params(
        tmp_path / "p.yaml",
        arith_raw,
        tmp_path / "res",
        quantization={"method": "none"},
        grid={"domains": ["arith", "times"], "learning_rates": [0.001], "seeds": [0]},
        evaluation={"domains": ["arith", "times"]},
        full_ft={"domains": ["arith"], "learning_rates": [0.0005]},
    )
    params = load(params_file)
    for d in params.grid.domains:
        assert main(argv("prepare-data", params=params_file, domain=d, out=str(layout.data_dir(params, d)))) == 0
    return params_file, params


# ---------------------------------------------------------------- token loss and accuracy


def test_score_equals_an_independent_per_example_computation(tiny_model, arith_raw, tmp_path):
    from locus.training.cell_data import load_split
    from locus.training.modeling import load_base, load_tokenizer

    params = load(write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", quantization={"method": "none"}))
    tok = load_tokenizer(tiny_model)
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:11]))
    data, _ = load_split(tok, tmp_path / "e.jsonl", params)
    model = load_base(params, tiny_model, quantize=False).eval()
    got = scoring.score(model, tok, data, batch_size=4)  # padded batches of unequal lengths
    chunked = scoring.score(model, tok, data, batch_size=4, chunk=3)  # the head 3 positions at a time

    nll, hits, n = 0.0, 0, 0
    with torch.no_grad():
        for ex in data:  # one unpadded example at a time, labels shifted by hand
            ids, labels = torch.tensor([ex["input_ids"]]), torch.tensor(ex["labels"])
            logits = model(input_ids=ids.to(model.device)).logits[0, :-1].double().cpu()
            target, keep = labels[1:], labels[1:] != -100
            nll += torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="sum").item()
            hits += int((logits[keep].argmax(-1) == target[keep]).sum())
            n += int(keep.sum())
    assert got["tokens"] == n and got["examples"] == 11
    assert got["loss"] == pytest.approx(nll / n, rel=1e-5)
    assert got["accuracy"] == hits / n
    assert chunked["loss"] == pytest.approx(got["loss"], rel=1e-6) and chunked["accuracy"] == got["accuracy"]


def test_evaluate_stage_and_cross_domain_table(tiny_model, two_domains):
    params_file, params = two_domains
    common = ["--params", str(params_file), "--model", str(tiny_model)]
    for d in params.evaluation.domains:
        assert main(argv("evaluate", *common, domains=d, out=str(layout.eval_base_path(params, d)))) == 0
    for d, lr, seed in layout.evaluated_cells(params):
        cell = layout.cell_dir(params, d, lr, seed)
        assert main(argv("init-adapter", *common, seed=seed, out=cell / "adapter_init")) == 0
        if d == "arith":  # a trained cell
            assert (
                main(
                    argv(
                        "train",
                        *common,
                        data=str(layout.data_dir(params, d)),
                        init=cell / "adapter_init",
                        lr=lr,
                        seed=seed,
                        out=cell,
                    )
                )
                == 0
            )
            adapter = cell / "adapter_final"
        else:  # the initial adapter (lora_B = 0) must score exactly as the base model
            adapter = cell / "adapter_init"
        assert main(argv("evaluate", *common, adapter=adapter, out=cell / "eval.json")) == 0

    table = evaluation.cross_domain_table(params)
    assert len(table) == 2 * 2 and set(table.eval_domain) == {"arith", "times"}
    assert table.in_domain.sum() == 2
    untrained = table[table.domain == "times"]
    assert np.allclose(untrained.delta_loss, 0, atol=1e-6) and np.allclose(untrained.delta_accuracy, 0)
    arith = table[(table.domain == "arith") & table.in_domain].iloc[0]
    metrics = json.loads((layout.cell_dir(params, "arith", 0.001, 0) / "metrics.json").read_text())
    assert arith.delta_loss < 0 and metrics["eval_loss_after"] < metrics["eval_loss_before"]
    text = evaluation.describe(table, 0.001)
    assert text.startswith("LR 0.001: in-domain eval loss changes by") and "off-domain" in text


def test_gain_and_forgetting_on_a_hand_made_table():
    rows = [("a", "a", -0.4), ("a", "b", 0.1), ("a", "c", 0.3), ("b", "b", -0.2), ("b", "a", 0.0), ("b", "c", -0.1)]
    t = pd.DataFrame(
        [
            {"domain": i, "lr": 0.1, "seed": 0, "eval_domain": j, "delta_loss": d, "delta_accuracy": 0.0}
            for i, j, d in rows
        ]
    ).assign(in_domain=lambda x: x.domain == x.eval_domain)
    g = evaluation.gain_and_forgetting(t).set_index("domain")
    assert g.loc["a", "in_domain"] == pytest.approx(-0.4) and g.loc["a", "off_domain"] == pytest.approx(0.2)
    assert g.loc["b", "off_domain"] == pytest.approx(-0.05)
    assert "most a→c +0.300" in evaluation.describe(t, 0.1) and "2/4 train→eval pairs get worse" in evaluation.describe(
        t, 0.1
    )
    assert "across seeds" not in evaluation.describe(t, 0.1)
    # A second seed with every change 0.1 larger: each average's s.d. over the two seeds' means is 0.1/√2.
    two = pd.concat([t, t.assign(seed=1, delta_loss=t.delta_loss + 0.1)])
    text = evaluation.describe(two, 0.1)
    assert "in-domain eval loss changes by -0.250 nats on average (s.d. 0.071 across seeds)" in text, text
    assert "off-domain by +0.125 (s.d. 0.071 across seeds)" in text and text.endswith("(mean over 2 seeds).")


# ---------------------------------------------------------------- full fine-tuning


def test_dense_metrics_against_numpy():
    rng = np.random.default_rng(0)
    delta = rng.normal(size=(48, 5)) @ rng.normal(size=(5, 40)) + 1e-3 * rng.normal(size=(48, 40))
    w0 = rng.normal(size=(48, 40)).astype(np.float32)
    m = full_ft.dense_metrics(delta.astype(np.float32), w0)
    s = np.linalg.svd(delta.astype(np.float32).astype(np.float64), compute_uv=False)
    p = s / s.sum()
    assert m["fro"] == pytest.approx(np.linalg.norm(delta), rel=1e-6)
    assert m["spectral"] == pytest.approx(np.linalg.norm(delta, 2), rel=1e-6)
    assert m["rel_fro"] == pytest.approx(np.linalg.norm(delta) / np.linalg.norm(w0), rel=1e-6)
    assert m["stable_rank"] == pytest.approx((s**2).sum() / s[0] ** 2, rel=1e-9)
    assert m["effective_rank"] == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-9)
    assert m["mean_abs"] == pytest.approx(np.abs(delta).mean(), rel=1e-6)
    energy = [(s[:k] ** 2).sum() / (s**2).sum() for k in range(1, len(s) + 1)]
    assert m["rank90"] == next(k for k, e in enumerate(energy, 1) if e >= 0.9) and m["rank90"] <= 5
    assert m["numerical_rank"] == 40  # the 1e-3 noise is far above float32 rounding


def test_spearman_on_hand_made_profiles():
    assert full_ft.spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)  # 1 − 6Σd²/(n(n²−1))
    assert full_ft.spearman([1, 2, 3, 4, 5], [5, 6, 7, 8, 7]) == pytest.approx(8 / np.sqrt(95))  # tie: mean ranks
    assert full_ft.spearman([1, 2, 3], [1, 8, 27]) == pytest.approx(1.0)
    assert full_ft.spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert critical_rho(30) == pytest.approx(0.364, abs=1e-3)


def _layers(profiles: dict, lr: float) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"domain": "d", "lr": lr, "seed": seed, "layer": i, "rel_fro": v, "mean_abs": v**2}
            for seed, prof in profiles.items()
            for i, v in enumerate(prof)
        ]
    )


def test_rho_table_and_verdicts():
    rng = np.random.default_rng(1)
    lora = _layers({0: np.arange(30) + 1.0, 1: np.arange(30) + 2.0 + rng.normal(0, 0.5, 30)}, 0.001)
    same = _layers({0: np.exp(np.arange(30) / 10), 1: np.exp(np.arange(30) / 10)}, 5e-5)
    rho = full_ft.rho_table(lora, same)
    assert len(rho) == 2 * 2 and set(rho.lora_metric) == {"rel_fro", "mean_abs"}
    summary = full_ft.rho_summary(rho)
    assert (summary.n == 2).all() and (summary["mean"] > 0.9).all()
    text = full_ft.describe(summary, "rel_fro")
    assert ", tracks full FT." in text and "± " in text and "n = 2 seeds" in text
    shuffled = _layers({s: rng.permutation(30).astype(float) for s in (0, 1)}, 5e-5)
    low = full_ft.rho_summary(full_ft.rho_table(lora, shuffled))
    assert abs(low["mean"].iloc[0]) < 0.5
    assert full_ft.verdict(0.1, 30) == "does not track full FT"
    assert full_ft.verdict(0.5, 30) == "tracks full FT only weakly"
    assert full_ft.verdict(0.5, 30, sd=0.05) == "tracks full FT only weakly"
    assert full_ft.verdict(0.68, 30, sd=0.05) == "tracks full FT only weakly, borderline"  # 0.7 within one s.d.


def test_full_ft_is_compared_like_for_like_and_lr_pairs_are_never_averaged():
    lora = pd.concat(
        [
            _layers({0: np.arange(30.0), 1: np.arange(30.0)}, 1e-3),
            _layers({0: np.arange(30.0)[::-1], 1: np.arange(30.0)[::-1]}, 2e-4),
        ]
    )
    ft = _layers({0: np.arange(30.0), 1: np.arange(30.0)}, 5e-5).assign(mean_abs=lambda d: -d.rel_fro)
    rho = full_ft.rho_table(lora, ft)
    # mean |Δ| is compared with full FT's mean |ΔW| (here the reverse order), not with its rel_fro
    assert rho.query("lora_metric == 'mean_abs' and lora_lr == 0.001").rho.eq(-1).all()
    text = full_ft.describe(full_ft.rho_summary(rho), "rel_fro")
    assert "LoRA LR 0.001 / full-FT LR 5e-05: ρ = 1.00 ± 0.00 (n = 2 seeds), tracks full FT" in text
    assert "LoRA LR 0.0002 / full-FT LR 5e-05: ρ = -1.00 ± 0.00 (n = 2 seeds), does not track full FT" in text
    assert "mean ρ" not in text


def test_train_full_and_its_metrics(tiny_model, two_domains):
    params_file, params = two_domains
    ((domain, lr, seed),) = layout.full_ft_cells(params)
    cell = layout.full_ft_dir(params, domain, lr, seed)
    assert str(cell).endswith("runs/arith/full_ft/lr=0.0005/seed=0")
    common = ["--params", str(params_file), "--model", str(tiny_model)]
    assert main(argv("train-full", *common, data=str(layout.data_dir(params, domain)), lr=lr, seed=seed, out=cell)) == 0
    metrics = json.loads((cell / "metrics.json").read_text())
    n_params = sum(t.size for t in load_file(tiny_model / "model.safetensors").values())
    assert metrics["trainable_parameters"] == n_params and metrics["quantization"] == "none"
    assert metrics["eval_loss_after"] < metrics["eval_loss_before"]
    delta = load_file(cell / "delta.safetensors")
    assert len(delta) == 3 * 6 and all(".layers." in k for k in delta)  # 3 layers × lora.target_modules
    base = load_file(tiny_model / "model.safetensors")

    assert (
        main(argv("full-ft-effective", *common, delta=cell / "delta.safetensors", out=cell / "effective.parquet")) == 0
    )
    table = pd.read_parquet(cell / "effective.parquet")
    assert len(table) == 18 and (table.fro > 0).all()
    row = table[(table.layer == 1) & (table.module == "up_proj")].iloc[0]
    d = delta["model.layers.1.mlp.up_proj.weight"].astype(np.float64)
    assert row.fro == pytest.approx(np.linalg.norm(d), rel=1e-9)
    assert row.rel_fro == pytest.approx(
        np.linalg.norm(d) / np.linalg.norm(base["model.layers.1.mlp.up_proj.weight"]), rel=1e-6
    )
    assert row.spectral == pytest.approx(np.linalg.norm(d, 2), rel=1e-9)
    layers = full_ft.layer_table(table.assign(domain=domain, lr=lr, seed=seed))
    assert list(layers.layer) == [0, 1, 2] and layers.attention_share.between(0, 1).all()


def test_experiment_domains_must_be_grid_domains(tmp_path, arith_raw):
    for section in ("evaluation", "full_ft"):
        path = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", **{section: {"domains": ["nope"]}})
        with pytest.raises(ParamsError, match=f"{section}.domains"):
            load(path)
    path = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", full_ft={"learning_rates": [0]})
    with pytest.raises(ParamsError, match="full_ft.learning_rates"):
        load(path)


def test_full_ft_trains_float32_master_weights_of_a_bf16_model(tmp_path, tiny_model, arith_raw):
    """A bf16-stored model (model.dtype bfloat16) is fully fine-tuned in float32: in bf16 an AdamW
    step of 1e-5 is below half a unit in the last place of most weights and would round away."""
    from transformers import AutoModelForCausalLM

    model_dir = tmp_path / "bf16"
    AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.bfloat16).save_pretrained(model_dir)
    shutil.copy(tiny_model / "tokenizer.json", model_dir)
    shutil.copy(tiny_model / "tokenizer_config.json", model_dir)
    params_file = write_params(
        tmp_path / "p.yaml", arith_raw, tmp_path / "res", model={"dtype": "bfloat16"}, quantization={"method": "none"}
    )
    params = load(params_file)
    data = layout.data_dir(params, "arith")
    assert main(argv("prepare-data", params=params_file, domain="arith", out=data)) == 0
    cell = tmp_path / "full"
    assert main(argv("train-full", params=params_file, model=model_dir, data=data, lr="1e-5", seed=0, out=cell)) == 0
    assert json.loads((cell / "metrics.json").read_text())["dtype"] == "float32"
    for name, d in load_file(cell / "delta.safetensors").items():
        assert d.dtype == np.float32 and np.count_nonzero(d) > 0.9 * d.size, name


def test_score_takes_the_model_logits_where_the_head_is_more_than_linear(tiny_model, arith_raw, tmp_path, monkeypatch):
    """A model outside LINEAR_HEAD (e.g. soft-capped or scaled logits) is scored from its own
    logits: here a tiny Llama whose logits the test doubles, seen only through model(x).logits."""
    from locus.training.cell_data import load_split
    from locus.training.modeling import load_base, load_tokenizer

    params = load(write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", quantization={"method": "none"}))
    tok = load_tokenizer(tiny_model)
    (tmp_path / "e.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:5]))
    data, _ = load_split(tok, tmp_path / "e.jsonl", params)
    model = load_base(params, tiny_model, quantize=False).eval()
    plain = scoring.score(model, tok, data, batch_size=4)
    model.register_forward_hook(lambda module, args, out: out.__class__(logits=2 * out.logits))
    assert scoring.score(model, tok, data, batch_size=4) == plain  # llama: the head path, hook unseen
    monkeypatch.setattr(head, "LINEAR_HEAD", set())
    doubled = scoring.score(model, tok, data, batch_size=4)
    assert doubled["loss"] != pytest.approx(plain["loss"], rel=1e-3)
