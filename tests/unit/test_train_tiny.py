"""The init -> train -> delta chain on a tiny random Llama, through the same CLI the workflows call."""

import csv
import json
import os
import subprocess
import sys

import pytest
import torch
from safetensors.numpy import load_file

from conftest import argv, on_cell, train_tiny_cell, write_params
from locus.cli import main
from locus.params import load
from locus.training.modeling import adapter_config, load_base, seed_everything


@pytest.mark.cpu_only("CPU reruns are bit-identical; CUDA only with training.deterministic")
@pytest.mark.parametrize("quant", ["none", "nf4"])
def test_same_seed_gives_bit_identical_adapters(tmp_path, tiny_model, arith_raw, quant):
    params = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", quantization={"method": quant})
    a = train_tiny_cell(tmp_path, tiny_model, params, "a")
    b = train_tiny_cell(tmp_path, tiny_model, params, "b")
    for name in ("adapter_init", "adapter_final"):
        assert (a / name / "adapter_model.safetensors").read_bytes() == (
            b / name / "adapter_model.safetensors"
        ).read_bytes()
    init = load_file(a / "adapter_init" / "adapter_model.safetensors")
    final = load_file(a / "adapter_final" / "adapter_model.safetensors")
    assert set(init) == set(final)
    for key in init:
        if ".lora_B." in key:
            assert not init[key].any(), "lora_B must start at exactly zero"
    assert any((init[k] != final[k]).any() for k in init), "training changed nothing"
    log = list(csv.DictReader((a / "train_log.csv").open()))
    metrics = json.loads((a / "metrics.json").read_text())
    assert [int(r["step"]) for r in log] == list(range(1, metrics["optimizer_steps"] + 1))
    assert all(float(r["loss"]) > 0 for r in log)
    assert metrics["quantization"] == quant and metrics["eval_loss_after"] < metrics["eval_loss_before"]


def test_other_seed_gives_other_init(tmp_path, tiny_model, arith_raw):
    params = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", quantization={"method": "none"})
    p = load(params)
    inits = []
    for seed in (0, 1):
        assert main(argv("init-adapter", params=params, model=tiny_model, seed=seed, out=tmp_path / f"i{seed}")) == 0
        inits.append((tmp_path / f"i{seed}" / "adapter_model.safetensors").read_bytes())
    assert inits[0] != inits[1] and p.lora.r == 4


def test_delta_stage_writes_the_table(tmp_path, tiny_model, arith_raw):
    import pandas as pd

    params = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", quantization={"method": "none"})
    cell = train_tiny_cell(tmp_path, tiny_model, params, "c")
    on_cell("delta", params, cell, out=cell / "delta.parquet")
    df = pd.read_parquet(cell / "delta.parquet")
    assert len(df) == 3 * 6 * 2  # layers x modules x {A, B}
    assert set(df.columns) >= {"layer", "module", "matrix", "n", "mean", "var", "mean_abs", "var_abs"}
    assert (df["mean_abs"] > 0).all()


def test_unknown_target_module_lists_available(tmp_path, tiny_model, arith_raw, capsys):
    params = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", lora={"target_modules": ["qkv"]})
    assert main(argv("init-adapter", params=params, model=tiny_model, seed="0", out=tmp_path / "x")) == 1
    err = capsys.readouterr().err
    assert "lora.target_modules" in err and "q_proj" in err and "down_proj" in err
    assert not (tmp_path / "x").exists()


def lora_grads(model):
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


def test_nf4_gradients_survive_an_eval_pass(tmp_path, tiny_model, arith_raw):
    """An eval-mode forward on CPU must not change later NF4 gradients (bitsandbytes repacking trap)."""
    from peft import get_peft_model

    params = load(
        write_params(
            tmp_path / "p.yaml",
            arith_raw,
            tmp_path / "res",
            lora={"dropout": 0.0},
            quantization={"cpu_kernel": "bitsandbytes"},
        )
    )
    batch = {"input_ids": torch.arange(3, 40).reshape(1, -1)}
    batch["labels"] = batch["input_ids"]
    grads = []
    for evaluate_first in (False, True):
        seed_everything(0)
        model = get_peft_model(load_base(params, tiny_model), adapter_config(params))
        on_device = {k: v.to(model.device) for k, v in batch.items()}  # a CUDA host loads the model on its GPU
        if evaluate_first:
            model.eval()
            with torch.no_grad():
                model(**on_device)
        model.train()
        model(**on_device).loss.backward()
        grads.append(lora_grads(model))
    for name in grads[0]:
        torch.testing.assert_close(grads[1][name], grads[0][name], msg=name)


def test_padding_free_batch_has_the_padded_loss(tiny_model, tmp_path):
    """One packed row with restarting position_ids computes the same loss as the padded batch:
    the block-diagonal mask keeps examples apart (a plain causal mask over the row would not)."""
    from peft import get_peft_model

    from conftest import RECORDS
    from locus.training.loop import build_model, make_collator
    from locus.training.modeling import load_tokenizer
    from locus.training.sft_data import encode

    params = load(write_params(tmp_path / "p.yaml", tmp_path, tmp_path / "res", quantization={"method": "none"}))
    tok = load_tokenizer(tiny_model)
    seed_everything(0)
    get_peft_model(load_base(params, tiny_model), adapter_config(params)).save_pretrained(tmp_path / "init")
    model = build_model(params, str(tiny_model), str(tmp_path / "init"))  # as the train stage builds it
    # Examples of different lengths, so the padded batch really pads.
    feats = [encode(tok, r["instruction"], r["response"] * (1 + i)) for i, r in enumerate(RECORDS[:3])]
    padded = make_collator(tok, params)
    packed = make_collator(
        tok, params.model_copy(update={"training": params.training.model_copy(update={"padding_free": True})})
    )
    with torch.no_grad():
        loss_padded = model(**{k: v.to(model.device) for k, v in padded(feats).items()}).loss
        batch = {k: v.to(model.device) for k, v in packed(feats).items()}
        loss_packed = model(**batch).loss
        crossed = model(input_ids=batch["input_ids"], labels=batch["labels"]).loss  # positions not restarted
        cached = model(**batch, use_cache=True).loss  # a KV cache disables the packed-sequence mask
    assert batch["input_ids"].shape[0] == 1 and packed.positions == packed.tokens
    assert padded.positions > padded.tokens == packed.tokens
    assert torch.allclose(loss_packed, loss_padded, atol=1e-5)
    assert not torch.allclose(crossed, loss_padded, atol=1e-3)
    assert not torch.allclose(cached, loss_padded, atol=1e-3)


def test_padding_free_training_matches_padded(tmp_path, tiny_model):
    from conftest import RECORDS

    arith_raw = tmp_path / "raw"  # responses of different lengths, so padded batches really pad
    arith_raw.mkdir()
    (arith_raw / "arith.jsonl").write_text(
        "".join(
            json.dumps({"instruction": r["instruction"], "response": r["response"] * (1 + i % 3)}) + "\n"
            for i, r in enumerate(RECORDS)
        )
    )
    base = dict(
        quantization={"method": "none"}, lora={"r": 4, "alpha": 8, "dropout": 0.0}
    )  # dropout masks depend on shape
    a = train_tiny_cell(
        tmp_path / "a", tiny_model, write_params(tmp_path / "a.yaml", arith_raw, tmp_path / "a" / "res", **base), "c"
    )
    b = train_tiny_cell(
        tmp_path / "b",
        tiny_model,
        write_params(tmp_path / "b.yaml", arith_raw, tmp_path / "b" / "res", **base, training={"padding_free": True}),
        "c",
    )
    la = [float(r["loss"]) for r in csv.DictReader((a / "train_log.csv").open())]
    lb = [float(r["loss"]) for r in csv.DictReader((b / "train_log.csv").open())]
    assert len(la) == len(lb) and max(abs(x - y) for x, y in zip(la, lb)) < 1e-4
    fa = load_file(a / "adapter_final" / "adapter_model.safetensors")
    fb = load_file(b / "adapter_final" / "adapter_model.safetensors")
    for key in fa:
        assert abs(fa[key] - fb[key]).max() < 1e-4, key
    ma, mb = (json.loads((c / "metrics.json").read_text()) for c in (a, b))
    assert ma["train_padding_fraction"] > 0 and mb["train_padding_fraction"] == 0 and mb["padding_free"]


@pytest.mark.cpu_only("the CPU dequantize-once kernel")
def test_training_and_scoring_on_the_once_quantized_w0_are_bit_identical(tmp_path, tiny_model, arith_raw):
    """With `--w0` (locus quantize-base) the CPU stages load the base in the compute dtype and take
    the stored NF4 weights instead of quantizing again: the same adapter, bit for bit, and the same
    evaluation, for the whole pipeline's NF4 path on a CPU."""
    params = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res")  # NF4, dequantized once
    a = train_tiny_cell(tmp_path, tiny_model, params, "a")
    w0 = tmp_path / "base-w0.safetensors"
    assert main(argv("quantize-base", params=params, model=tiny_model, out=w0)) == 0
    data, b = tmp_path / "res" / "data" / "arith", tmp_path / "res" / "b"
    common = dict(params=params, model=tiny_model, data=data, init=a / "adapter_init", lr="0.001", seed=0)
    assert main(argv("train", **common, w0=w0, out=b)) == 0
    # The `locus` command itself, in its own process: given the stored W₀ on a CPU it never
    # imports bitsandbytes (locus.cli.runs_without_bitsandbytes), and trains the same adapter.
    c = tmp_path / "res" / "c"
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "locus", *argv("train", **common, w0=w0, out=c)],
        capture_output=True,
        text=True,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
    )
    assert run.returncode == 0, run.stderr[-3000:]
    imported = {line.split("|")[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}
    # (a blocked `import bitsandbytes` is listed too, failing at once: a real one loads its submodules)
    assert "peft" in imported and not any(m.startswith("bitsandbytes.") for m in imported)
    for cell in (b, c):
        got, want = (load_file(x / "adapter_final" / "adapter_model.safetensors") for x in (cell, a))
        assert got.keys() == want.keys() and all((got[k] == want[k]).all() for k in want)
        assert (cell / "train_log.csv").read_text() == (a / "train_log.csv").read_text()
    scores = []
    for extra in ({}, {"w0": w0}):
        out = tmp_path / f"eval{len(extra)}.json"
        assert (
            main(
                argv(
                    "evaluate",
                    params=params,
                    model=tiny_model,
                    adapter=a / "adapter_final",
                    domains="arith",
                    out=out,
                    **extra,
                )
            )
            == 0
        )
        scores.append(json.loads(out.read_text())["scores"])
    assert scores[0] == scores[1]


@pytest.mark.parametrize("quant", ["none", "nf4"])
def test_the_loss_before_training_is_the_base_models_scored_once_per_domain(
    tmp_path, tiny_model, arith_raw, quant, capsys
):
    """The initial adapter (lora_B = 0) leaves the base unchanged, so the base model's score
    (`locus evaluate` without an adapter, once per domain) is every cell's eval loss before
    training: the pipeline passes it in as --before instead of each cell scoring it again."""
    params = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", quantization={"method": quant})
    own = train_tiny_cell(tmp_path, tiny_model, params, "own")  # no --before: scored in the loop
    base = tmp_path / "res" / "eval_base.json"
    assert main(argv("evaluate", params=params, model=tiny_model, domains="arith", out=base)) == 0
    computed = json.loads((own / "metrics.json").read_text())
    assert json.loads(base.read_text())["scores"]["arith"]["loss"] == computed["eval_loss_before"]

    data, init, given = tmp_path / "res" / "data" / "arith", own / "adapter_init", tmp_path / "res" / "given"
    common = dict(params=params, model=tiny_model, data=data, init=init, lr=0.001, seed=0)
    assert main(argv("train", **common, before=base, out=given)) == 0
    passed = json.loads((given / "metrics.json").read_text())
    for key in ("eval_loss_before", "eval_loss_after", "train_loss"):
        assert passed[key] == computed[key], key
    # A score of another eval split (here: claiming 999 examples) is refused, naming the file.
    other = json.loads(base.read_text())
    other["scores"]["arith"]["examples"] = 999
    (tmp_path / "other.json").write_text(json.dumps(other))
    capsys.readouterr()
    assert main(argv("train", **common, before=tmp_path / "other.json", out=tmp_path / "res" / "bad")) != 0
    assert "other.json: arith scored on 999 eval examples" in capsys.readouterr().err
