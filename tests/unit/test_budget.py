"""Comparable maps: equal example budgets across domains, and the Adam-aware magnitude mean|Δ| ÷ Σ lr_t."""

import csv
import json

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file

from conftest import RECORDS, argv, on_cell, write_params, write_raw
from locus.cli import main


def train_cell(tmp_path, tiny_model, params_file, lr=0.001):
    data, cell = tmp_path / "res" / "data" / "arith", tmp_path / "res" / "cell"
    common = ["--params", str(params_file)]
    assert main(argv("prepare-data", *common, domain="arith", out=data)) == 0
    assert main(argv("init-adapter", *common, model=tiny_model, seed="0", out=cell / "adapter_init")) == 0
    code = main(
        argv("train", *common, model=tiny_model, data=data, init=cell / "adapter_init", lr=lr, seed="0", out=cell)
    )
    return code, cell


def delta(cell, params_file):
    on_cell("delta", params_file, cell, metrics=cell / "metrics.json", out=cell / "delta.parquet")
    return pd.read_parquet(cell / "delta.parquet")


@pytest.fixture
def mixed_raw(tmp_path):
    """Arithmetic records, every third one far over max_seq_length (dropped under overlength: drop)."""
    rows = [r | ({"response": r["response"] + " and so on" * 40} if i % 3 == 0 else {}) for i, r in enumerate(RECORDS)]
    return write_raw(tmp_path / "raw", "arith", rows)


def test_dropped_examples_are_replaced_so_the_budget_is_met(tmp_path, tiny_model, mixed_raw):
    params = write_params(
        tmp_path / "p.yaml",
        mixed_raw,
        tmp_path / "res",
        quantization={"method": "none"},
        training={"overlength": "drop"},
        data={"max_train_examples": 8, "max_eval_examples": 2},
    )
    code, cell = train_cell(tmp_path, tiny_model, params)
    assert code == 0
    m = json.loads((cell / "metrics.json").read_text())
    assert m["train"]["examples"] == 8 and m["train"]["dropped"] > 0 and not m["train"]["budget_short"]
    assert m["eval"]["examples"] == 2
    assert m["optimizer_steps"] == 2  # 8 examples / (batch 2 x accumulation 2)


def test_a_domain_that_cannot_fill_the_budget_fails_or_trains_fewer_when_asked(tmp_path, tiny_model, mixed_raw, capsys):
    budget = dict(
        quantization={"method": "none"},
        training={"overlength": "drop"},
        data={"max_train_examples": 24, "max_eval_examples": 2},
    )
    params = write_params(tmp_path / "p.yaml", mixed_raw, tmp_path / "res", **budget)
    code, cell = train_cell(tmp_path, tiny_model, params)
    err = capsys.readouterr().err
    assert code == 1 and "data.max_train_examples=24" in err and "data.short_budget" in err
    assert not (cell / "metrics.json").exists()

    budget["data"] |= {"short_budget": "train_fewer"}
    params = write_params(tmp_path / "q.yaml", mixed_raw, tmp_path / "res", **budget)
    code, cell = train_cell(tmp_path, tiny_model, params)
    m = json.loads((cell / "metrics.json").read_text())
    assert code == 0 and m["train"]["budget_short"] and m["train"]["examples"] < 24


def one_step_params(tmp_path, raw, steps):
    """Constant LR, no warmup, no dropout or weight decay: Adam's update is lr·m̂/(√v̂+ε) exactly."""
    return write_params(
        tmp_path / "p.yaml",
        raw,
        tmp_path / "res",
        quantization={"method": "none"},
        lora={"dropout": 0.0},
        training={"max_steps": steps, "lr_scheduler": "constant", "warmup_ratio": 0.0, "checkpoint_every": 0},
    )


def test_one_adam_step_moves_every_lora_b_element_by_lr_and_lora_a_not_at_all(tmp_path, tiny_model, arith_raw):
    lr = 0.001
    params = one_step_params(tmp_path, arith_raw, steps=1)
    code, cell = train_cell(tmp_path, tiny_model, params, lr=lr)
    assert code == 0
    init = load_file(cell / "adapter_init" / "adapter_model.safetensors")
    final = load_file(cell / "adapter_final" / "adapter_model.safetensors")
    for key in init:
        step = np.abs(final[key].astype(np.float64) - init[key])
        if ".lora_A." in key:
            assert not step.any(), f"{key}: lora_A's gradient is 0 while B = 0"
        else:  # m̂/(√v̂+ε) = g/(|g|+ε) = ±1 at step 1, short of 1 only where |g| is near ε = 1e-8
            assert step.max() <= lr * (1 + 1e-6), key
            assert (np.abs(step / lr - 1) < 1e-3).mean() >= 0.95, key
    m = json.loads((cell / "metrics.json").read_text())
    assert m["sum_lr"] == pytest.approx(lr)
    table = delta(cell, params)
    np.testing.assert_allclose(table.loc[table.matrix == "B", "mean_abs_per_lr"], 1.0, rtol=2e-3)
    assert (table.loc[table.matrix == "A", "mean_abs_per_lr"] == 0).all()


def test_adam_steps_stay_within_the_kingma_ba_bound(tmp_path, tiny_model, arith_raw):
    """Per step, |Δθ| ≤ lr·(1−β₁)/√(1−β₂) (Kingma & Ba 2015, §2.1), so mean_abs_per_lr is bounded."""
    params = one_step_params(tmp_path, arith_raw, steps=4)
    code, cell = train_cell(tmp_path, tiny_model, params, lr=0.002)
    assert code == 0
    rows = list(csv.DictReader((cell / "train_log.csv").open()))
    sum_lr = sum(float(r["learning_rate"]) for r in rows)
    assert len(rows) == 4 and sum_lr == pytest.approx(4 * 0.002)
    bound = (1 - 0.9) / np.sqrt(1 - 0.999)
    init = load_file(cell / "adapter_init" / "adapter_model.safetensors")
    final = load_file(cell / "adapter_final" / "adapter_model.safetensors")
    worst = max(np.abs(final[k].astype(np.float64) - init[k]).max() for k in init)
    assert 0 < worst <= sum_lr * bound * (1 + 1e-6)
    table = delta(cell, params)
    assert (table["mean_abs_per_lr"] <= bound).all() and (table["mean_abs_per_lr"] > 0).any()
    np.testing.assert_allclose(table["mean_abs_per_lr"], table["mean_abs"] / sum_lr)
