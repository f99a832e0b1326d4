"""`locus external` on adapters trained by a real client: stock peft.get_peft_model + trl.SFTTrainer
(not Locus's training code), saved the standard way, analysed by Locus and checked module by module
against a dense computation that reads the adapter through PEFT itself and W₀ with safetensors."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.numpy import load_file, save_file
from safetensors.torch import load_file as load_torch

from conftest import RECORDS, argv, copy_repo, run_tool
from locus.cli import main
from locus.params import ParamsError, load

# name -> (LoraConfig kwargs, save in bf16, save the initial adapter too)
VARIANTS = {
    "plain": (dict(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]), False, True),
    "rslora": (
        dict(
            r=8,
            lora_alpha=4,
            use_rslora=True,
            target_modules=["q_proj", "k_proj", "up_proj"],
            layers_to_transform=[0, 2],
        ),
        False,
        False,
    ),
    "pattern": (
        dict(
            r=4,
            lora_alpha=8,
            target_modules=["q_proj", "k_proj", "down_proj"],
            rank_pattern={"k_proj": 2, "model.layers.1.self_attn.q_proj": 8},
            alpha_pattern={"down_proj": 3},
        ),
        False,
        False,
    ),
    # target_modules as a regex string (layers 1 and 2 only), a modules_to_save copy, stored in bf16
    "mixed": (
        dict(
            r=4,
            lora_alpha=8,
            target_modules=r".*\.layers\.[12]\.(self_attn\.q_proj|mlp\.up_proj)",
            modules_to_save=["lm_head"],
        ),
        True,
        False,
    ),
}


def _base(tiny_model):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)


def _save_untrained(tiny_model, path, **config):
    from peft import get_peft_model

    torch.manual_seed(0)
    get_peft_model(_base(tiny_model), config["cls"](**config["kw"])).save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def trained(tiny_model, tmp_path_factory):
    """{name: (adapter dir, init dir or None)} trained 3 steps each with TRL's SFTTrainer."""
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from transformers import AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    root = tmp_path_factory.mktemp("external")
    tok = AutoTokenizer.from_pretrained(tiny_model)
    data = Dataset.from_list(
        [
            {
                "messages": [
                    {"role": "user", "content": r["instruction"]},
                    {"role": "assistant", "content": r["response"]},
                ]
            }
            for r in RECORDS[:16]
        ]
    )
    out = {}
    for name, (kw, bf16, keep_init) in VARIANTS.items():
        torch.manual_seed(0)
        model = get_peft_model(_base(tiny_model), LoraConfig(task_type="CAUSAL_LM", **kw))
        init = root / f"{name}_init" if keep_init else None
        if init:
            model.save_pretrained(init)  # the initial snapshot, as a user would keep it
        args = SFTConfig(
            output_dir=str(root / f"{name}_run"),
            max_steps=3,
            per_device_train_batch_size=4,
            learning_rate=1e-2,
            max_length=64,
            use_cpu=True,
            report_to=[],
            save_strategy="no",
            disable_tqdm=True,
            seed=0,
        )
        trainer = SFTTrainer(model=model, args=args, train_dataset=data, processing_class=tok)
        trainer.train()
        if bf16:
            trainer.model.to(torch.bfloat16)
        trainer.save_model(str(root / name))
        out[name] = (root / name, init)
    return out


@pytest.fixture(scope="module")
def analysed(trained, tiny_model, tmp_path_factory):
    """`locus external` on all four adapters, W₀ = the plain weights; returns the output directory."""
    root = tmp_path_factory.mktemp("analysed")
    params = root / "params.yaml"
    params.write_text("grid: {domains: [x]}\n")
    command = argv(
        "external",
        params=params,
        model=tiny_model,
        base_quantization="none",
        out=root / "out",
        init=f"plain={trained['plain'][1]}",
    )
    for name, (directory, _) in trained.items():
        command += ["--adapter", f"{name}={directory}"]
    assert main(command) == 0
    return root / "out"


def dense_reference(tiny_model, adapter_dir):
    """{module path: (s, dense ΔW, W₀)} with s and B, A taken from PEFT's own loaded LoRA layers and
    W₀ read with safetensors; ΔW = s·B@A in float64 (checked against PEFT's get_delta_weight)."""
    from peft import PeftModel
    from peft.tuners.lora import LoraLayer

    w0s = load_file(tiny_model / "model.safetensors")
    model = PeftModel.from_pretrained(_base(tiny_model), adapter_dir)
    ref = {}
    for name, layer in model.named_modules():
        if isinstance(layer, LoraLayer) and "default" in layer.lora_A:
            s = layer.scaling["default"]
            a = layer.lora_A["default"].weight.detach().double().numpy()
            b = layer.lora_B["default"].weight.detach().double().numpy()
            dw = s * b @ a
            np.testing.assert_allclose(dw, layer.get_delta_weight("default").double().numpy(), rtol=1e-4, atol=1e-7)
            path = name.removeprefix("base_model.model.")
            ref[path] = (s, dw, w0s[path + ".weight"].astype(np.float64))
    return ref


@pytest.mark.parametrize("name", list(VARIANTS))
def test_effective_matches_dense(name, trained, analysed, tiny_model):
    table = pd.read_parquet(analysed / name / "effective.parquet")
    ref = dense_reference(tiny_model, trained[name][0])
    assert len(table) == len(ref) > 0
    for row in table.itertuples():
        s, dw, w0 = ref[f"model.layers.{row.layer}.{'self_attn' if row.block == 'attention' else 'mlp'}.{row.module}"]
        fro = np.linalg.norm(dw)
        assert fro > 0, "training moved every module"
        assert row.scaling == pytest.approx(s, rel=1e-12)
        assert row.fro == pytest.approx(fro, rel=1e-6)
        assert row.spectral == pytest.approx(np.linalg.svd(dw, compute_uv=False)[0], rel=1e-6)
        assert row.rel_fro == pytest.approx(fro / np.linalg.norm(w0), rel=1e-6)
        assert row.w0_fro == pytest.approx(np.linalg.norm(w0), rel=1e-6)


def test_scaling_rank_and_layers(trained, analysed):
    rs = pd.read_parquet(analysed / "rslora" / "effective.parquet")
    assert list(rs.scaling) == pytest.approx([4 / 8**0.5] * len(rs))  # α/√r
    assert sorted(set(rs.layer)) == [0, 2]  # layers_to_transform
    pat = pd.read_parquet(analysed / "pattern" / "effective.parquet").set_index(["layer", "module"])
    assert pat.loc[(1, "q_proj"), "rank"] == 8 and pat.loc[(0, "q_proj"), "rank"] == 4
    assert set(pat.xs("k_proj", level="module")["rank"]) == {2}
    assert list(pat.xs("down_proj", level="module")["scaling"]) == pytest.approx([3 / 4] * 3)
    mixed = pd.read_parquet(analysed / "mixed" / "effective.parquet")
    assert sorted(set(mixed.layer)) == [1, 2] and set(mixed.module) == {"q_proj", "up_proj"}
    layers = pd.read_parquet(analysed / "layers.parquet")
    assert set(layers[layers.adapter == "mixed"].layer) == {1, 2}


def test_seed_statistics_need_the_initial_snapshot(trained, analysed):
    """Δ_B = B for every adapter; Δ_A only for `plain`, whose initial adapter was given."""
    for name, (directory, init) in trained.items():
        delta = pd.read_parquet(analysed / name / "delta.parquet")
        # through torch: numpy has no bfloat16 (the `mixed` adapter is stored in bf16)
        tensors = {k: v.double().numpy() for k, v in load_torch(directory / "adapter_model.safetensors").items()}
        assert set(delta.matrix) == ({"A", "B"} if init else {"B"})
        before = load_file(init / "adapter_model.safetensors") if init else {}
        for row in delta.itertuples():
            block = "self_attn" if row.block == "attention" else "mlp"
            key = f"base_model.model.model.layers.{row.layer}.{block}.{row.module}.lora_{row.matrix}.weight"
            d = tensors[key] - (before[key] if row.matrix == "A" else 0.0)
            assert row.mean_abs == pytest.approx(np.abs(d).mean(), rel=1e-9)
            assert row.var == pytest.approx(d.var(), rel=1e-9)
    layers = pd.read_parquet(analysed / "layers.parquet")
    assert layers[layers.adapter == "plain"].mean_abs.notna().all()
    assert layers[layers.adapter == "rslora"].mean_abs.isna().all()
    assert layers.mean_abs_B.notna().all()


def test_report(analysed):
    page = (analysed / "report.html").read_text()
    assert "cdn." not in page and "vegaEmbed" in page
    for text in (
        "plain",
        "rslora",
        "pattern",
        "mixed",
        "unavailable",
        "--base-quantization none",
        "base_model.model.lm_head.weight",
        "modules_to_save",
    ):
        assert text in page, text
    assert (analysed / "figures" / "external_profile.svg").exists()


def test_nf4_base_is_stated_and_used(trained, tiny_model, tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text("grid: {domains: [x]}\n")  # quantization.method defaults to nf4
    out = tmp_path / "out"
    assert main(argv("external", params=params, model=tiny_model, adapter=f"plain={trained['plain'][0]}", out=out)) == 0
    nf4 = pd.read_parquet(out / "plain" / "effective.parquet")
    w0 = load_file(tiny_model / "model.safetensors")
    plain = [
        np.linalg.norm(
            w0[f"model.layers.{r.layer}.{'self_attn' if r.block == 'attention' else 'mlp'}.{r.module}.weight"]
        )
        for r in nf4.itertuples()
    ]
    # NF4 round trip: close to the plain weights but not equal
    assert np.allclose(nf4.w0_fro, plain, rtol=0.1) and not np.allclose(nf4.w0_fro, plain, rtol=1e-6)
    assert "--base-quantization nf4" in (out / "report.html").read_text()


def _external_on_plain_w0(tmp_path, tiny_model, adapter, *extra) -> int:
    """`locus external` on one adapter "a" of the tiny model, W₀ the plain weights, out in tmp_path/out."""
    params = tmp_path / "params.yaml"
    params.write_text("grid: {domains: [x]}\n")
    run = argv("external", params=params, model=tiny_model, adapter=f"a={adapter}", out=tmp_path / "out")
    return main([*run, "--base-quantization", "none", *extra])


@pytest.mark.parametrize("kind", ["lokr", "pissa"])
def test_refused_adapters(kind, tiny_model, tmp_path, capsys):
    from peft import LoKrConfig, LoraConfig

    configs = {
        "lokr": (LoKrConfig, dict(r=4, target_modules=["q_proj"]), "LOKR"),
        "pissa": (LoraConfig, dict(r=4, target_modules=["q_proj"], init_lora_weights="pissa"), "pissa"),
    }
    cls, kw, words = configs[kind]
    directory = _save_untrained(tiny_model, tmp_path / kind, cls=cls, kw=kw)
    code = _external_on_plain_w0(tmp_path, tiny_model, directory)
    err = capsys.readouterr().err
    assert code == 1 and str(directory / "adapter_config.json") in err and words in err, err
    assert not (tmp_path / "out" / "report.html").exists()


@pytest.mark.parametrize("kind", ["dora", "ia3", "prefix"])
def test_other_methods_are_analysed(kind, tiny_model, tmp_path):
    """DoRA, IA³ and prefix-tuning adapters trained elsewhere: every layer measured, the method named."""
    from peft import IA3Config, LoraConfig, PrefixTuningConfig

    configs = {
        "dora": (LoraConfig, dict(r=4, target_modules=["q_proj"], use_dora=True)),
        "ia3": (IA3Config, dict(target_modules=["q_proj", "down_proj"], feedforward_modules=["down_proj"])),
        "prefix": (PrefixTuningConfig, dict(num_virtual_tokens=3, task_type="CAUSAL_LM")),
    }
    cls, kw = configs[kind]
    init = _save_untrained(tiny_model, tmp_path / "init", cls=cls, kw=kw)
    final = tmp_path / "final"
    shutil.copytree(init, final)
    tensors = load_file(final / "adapter_model.safetensors")
    save_file({k: v + 0.05 * np.ones_like(v) for k, v in tensors.items()}, final / "adapter_model.safetensors")
    init_arg = ["--init", f"a={init}"] if kind == "prefix" else []
    assert _external_on_plain_w0(tmp_path, tiny_model, final, *init_arg) == 0
    table = pd.read_parquet(tmp_path / "out" / "a" / "effective.parquet")
    assert sorted(table.layer.unique()) == [0, 1, 2] and (table.fro > 0).all()
    assert f"<td>{kind}</td>" in (tmp_path / "out" / "report.html").read_text()


def test_params_external_section(tmp_path):
    good = {
        "grid": {"domains": ["x"]},
        "external": {
            "mine": {"model": "m", "adapters": {"a": "d1", "b": "d2"}, "init": {"a": "d0"}, "base_quantization": "none"}
        },
    }
    path = tmp_path / "p.yaml"
    path.write_text(json.dumps(good))
    assert load(path).external["mine"].adapters == {"a": "d1", "b": "d2"}
    for bad, key in [
        ({"init": {"c": "d"}}, "init"),
        ({"adapters": {}}, "adapters"),
        ({"adapters": {"a/b": "d"}}, "adapters"),
        ({"base_quantization": "int8"}, "base_quantization"),
    ]:
        path.write_text(json.dumps({**good, "external": {"mine": {**good["external"]["mine"], **bad}}}))
        with pytest.raises(ParamsError, match=f"external.mine.*{key}"):
            load(path)


def test_snakemake_target(trained, tiny_model, tmp_path):
    """results/external/{name}/report.html resolves to the one `locus external` command (dry run)."""
    repo = copy_repo(tmp_path / "repo")
    (repo / "ext.yaml").write_text(
        json.dumps(
            {
                "grid": {"domains": ["cpp"]},
                "results_dir": "res",
                "external": {
                    "tiny": {
                        "model": str(tiny_model),
                        "base_quantization": "none",
                        "adapters": {"plain": str(trained["plain"][0]), "rs": str(trained["rslora"][0])},
                    }
                },
            }
        )
    )
    proc = run_tool(
        repo,
        "snakemake",
        "-n",
        "-p",
        "--cores",
        "1",
        "--config",
        "params=ext.yaml",
        "--",
        "res/external/tiny/report.html",
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (
        f"locus external --params ext.yaml --model {tiny_model} --adapter plain={trained['plain'][0]} "
        f"--adapter rs={trained['rslora'][0]} --base-quantization none --out res/external/tiny"
    ) in proc.stdout
