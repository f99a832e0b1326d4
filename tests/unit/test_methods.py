"""Every method's update against PEFT's own merge, prefix tuning's table against PEFT's prompt, each
method trained and measured by the real stages on the tiny model, and the methods' params errors."""

import json

import numpy as np
import pytest
import torch
import yaml
from peft import IA3Config, LoraConfig, PrefixTuningConfig, get_peft_model
from transformers import AutoModelForCausalLM

from conftest import argv, write_params, write_raw
from locus.analysis.updates import effective_table
from locus.cli import main
from locus.core.keys import adapter_module_path
from locus.core.methods import prefix_blocks
from locus.params import ParamsError, load

TARGETS = ["q_proj", "v_proj", "up_proj", "down_proj"]
CONFIGS = {
    "lora": LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, task_type="CAUSAL_LM"),
    "rslora": LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, use_rslora=True, task_type="CAUSAL_LM"),
    "dora": LoraConfig(r=4, lora_alpha=8, target_modules=TARGETS, use_dora=True, task_type="CAUSAL_LM"),
    "ia3": IA3Config(
        target_modules=["k_proj", "v_proj", "down_proj"], feedforward_modules=["down_proj"], task_type="CAUSAL_LM"
    ),
}


def perturbed(model, seed: int) -> None:
    """Every trainable tensor moved by a random step, as training would (lora_B away from 0, l from 1, m from ‖W₀‖)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(0.3 * torch.randn(p.shape, generator=g, dtype=p.dtype) * (p.abs().mean() + 0.1))


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_update_matches_peft_merge(kind, tiny_model, tmp_path):
    """ΔW = W'(final) − W'(init) of every module equals PEFT's merge_and_unload() of the final adapter
    minus that of the initial one, dense and in float64 (the model itself is float64 here)."""
    params = load(write_params(tmp_path / "params.yaml", tmp_path, tmp_path / "res", quantization={"method": "none"}))
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float64)
    model = get_peft_model(base, CONFIGS[kind])
    perturbed(model, 0)  # a non-trivial initial adapter too: the update is final minus initial
    model.save_pretrained(tmp_path / "init")
    perturbed(model, 1)
    model.save_pretrained(tmp_path / "final")
    merged_final = {k: v.clone() for k, v in model.merge_and_unload().state_dict().items()}
    again = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float64), CONFIGS[kind])
    again.load_adapter(str(tmp_path / "init"), adapter_name="default")
    merged_init = again.merge_and_unload().state_dict()

    w0 = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float64).state_dict()
    table = effective_table(tmp_path / "final", tiny_model, params, init=tmp_path / "init")
    assert len(table) == 3 * len(CONFIGS[kind].target_modules)
    for row in table.itertuples():
        block = "self_attn" if row.block == "attention" else "mlp"
        name = f"model.layers.{row.layer}.{block}.{row.module}.weight"
        dw = (merged_final[name] - merged_init[name]).numpy()
        sigma = np.linalg.svd(dw, compute_uv=False)
        # Locus reads adapter tensors as float32 (what training saves); PEFT merged the float64 ones.
        assert row.fro == pytest.approx(np.linalg.norm(dw), rel=1e-6), name
        assert row.spectral == pytest.approx(sigma[0], rel=1e-6), name
        assert row.rel_fro == pytest.approx(np.linalg.norm(dw) / np.linalg.norm(w0[name].numpy()), rel=1e-6)
        assert row.fro > 0


def test_prefix_table_splits_as_peft_feeds_it(tiny_model):
    """prefix_blocks(…)[(ℓ, prefix_key/value)] is exactly the key/value PEFT's get_prompt hands layer ℓ."""
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model),
        PrefixTuningConfig(num_virtual_tokens=5, task_type="CAUSAL_LM"),
    )
    table = model.prompt_encoder["default"].embedding.weight.detach().numpy()
    blocks = prefix_blocks(table, model.config.num_hidden_layers)
    cache = model.get_prompt(batch_size=1)
    for layer in range(model.config.num_hidden_layers):
        keys, values = cache.layers[layer].keys[0], cache.layers[layer].values[0]  # (kv_heads, T, head_dim)
        for tensor, module in ((keys, "prefix_key"), (values, "prefix_value")):
            want = tensor.permute(1, 0, 2).reshape(5, -1).detach().numpy()  # (T, kv_heads·head_dim)
            np.testing.assert_array_equal(blocks[(layer, module)], want)


def methods_params(tmp_path, **extra):
    raw = write_raw(tmp_path / "raw")
    params = write_params(tmp_path / "params.yaml", raw, tmp_path / "res", quantization={"method": "none"})
    content = yaml.safe_load(params.read_text())
    content["methods"] = {
        "lora": {},
        "dora": {"lora": {"use_dora": True}},
        "ia3": {"peft": "ia3", "learning_rates": [0.02]},
        "prefix": {"peft": "prefix", "prefix": {"num_virtual_tokens": 4}, "learning_rates": [0.02]},
    } | extra
    params.write_text(yaml.safe_dump(content))
    return params


@pytest.mark.parametrize("method", ["dora", "ia3", "prefix"])
def test_each_method_trains_and_is_measured(method, tiny_model, tmp_path):
    """init-adapter, train, effective and represent of one method's cell through the CLI: the adapter is
    PEFT's own type, training moves it, and the tables hold every layer."""
    params = methods_params(tmp_path)
    data, cell = tmp_path / "data", tmp_path / "cell"
    run = dict(params=params, method=method)
    assert main(argv("prepare-data", **run, domain="arith", out=data)) == 0
    assert main(argv("init-adapter", **run, model=tiny_model, seed=0, out=cell / "init")) == 0
    kind = json.loads((cell / "init" / "adapter_config.json").read_text())
    assert (kind["peft_type"], kind.get("use_dora", False)) == {
        "dora": ("LORA", True),
        "ia3": ("IA3", False),
        "prefix": ("PREFIX_TUNING", False),
    }[method]
    assert main(argv("train", **run, model=tiny_model, data=data, init=cell / "init", lr=0.02, seed=0, out=cell)) == 0
    metrics = json.loads((cell / "metrics.json").read_text())
    assert metrics["eval_loss_after"] != metrics["eval_loss_before"]
    assert (
        main(
            argv(
                "effective",
                **run,
                model=tiny_model,
                init=cell / "init",
                final=cell / "adapter_final",
                out=cell / "e.parquet",
            )
        )
        == 0
    )
    assert (
        main(
            argv(
                "represent", **run, model=tiny_model, adapter=cell / "adapter_final", data=data, out=cell / "r.parquet"
            )
        )
        == 0
    )
    import pandas as pd

    effective, rep = pd.read_parquet(cell / "e.parquet"), pd.read_parquet(cell / "r.parquet")
    assert sorted(effective.layer.unique()) == [0, 1, 2] == sorted(rep.layer)
    assert (effective.fro > 0).all() and (rep.rep_change > 0).all()
    if method == "prefix":
        assert set(effective.module) == {"prefix_key", "prefix_value"}
        from safetensors.numpy import load_file

        assert not load_file(cell / "init" / "adapter_model.safetensors")["prompt_embeddings"].any()  # init: zero


@pytest.mark.parametrize(
    "methods, method, message",
    [
        ({"x": {"peft": "lohaa"}}, "lora", "methods.x.peft"),
        (
            {"x": {"peft": "ia3", "lora": {"r": 4}}},
            "lora",
            "methods.x: Value error, lora: a ia3 method has no lora settings",
        ),
        ({"x": {"lora": {"rank": 4}}}, "lora", "methods.x.lora.rank: Extra inputs are not permitted"),
        ({"x": {"lora": {"r": 0}}}, "lora", "methods.x.lora.r: Input should be greater than 0"),
        ({"x": {"learning_rates": [2.0]}}, "lora", "methods.x.learning_rates"),
        ({"full_ft": {}}, "lora", "methods.full_ft: the name is reserved"),
        ({}, "nope", "method: 'nope' is not one of methods"),
        ({"p": {"peft": "prefix"}}, "p", "method: 'p' is prefix; the main map"),
        ({"d": {"lora": {"use_dora": True}}}, "d", "method: 'd' is dora; the main map"),
    ],
)
def test_bad_methods_fail_naming_the_key(methods, method, message, tmp_path):
    params = write_params(tmp_path / "params.yaml", tmp_path, tmp_path / "res")
    content = yaml.safe_load(params.read_text()) | {"method": method}
    content["methods"] = {"lora": {}} | methods
    params.write_text(yaml.safe_dump(content))
    with pytest.raises(ParamsError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        load(params)
    assert str(params) in str(e.value) and "\n" not in str(e.value)


def test_unknown_method_on_the_command_line(tiny_model, tmp_path, capsys):
    params = methods_params(tmp_path)
    assert main(argv("init-adapter", params=params, method="loha", model=tiny_model, seed=0, out=tmp_path / "x")) == 2
    assert "method 'loha' is not one of methods" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_adapter_types_locus_cannot_map_are_refused(tmp_path):
    from locus.core.adapters import read_adapter_config

    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "LOHA", "r": 4}))
    with pytest.raises(ValueError, match=r"adapter_config.json: peft_type: LOHA adapters are not supported"):
        read_adapter_config(tmp_path)
    (tmp_path / "adapter_config.json").write_text(json.dumps({"peft_type": "PREFIX_TUNING", "prefix_projection": True}))
    with pytest.raises(ValueError, match=r"prefix_projection"):
        read_adapter_config(tmp_path)


def test_module_paths_of_every_kind():
    for key in (
        "base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight",
        "base_model.model.model.layers.1.self_attn.q_proj.lora_magnitude_vector",
        "base_model.model.model.layers.1.self_attn.q_proj.ia3_l",
    ):
        assert adapter_module_path(key) == "model.layers.1.self_attn.q_proj"


@pytest.fixture(scope="module")
def method_grid(tiny_model, tmp_path_factory):
    """Three methods × two seeds of one domain trained by the real stages, then aggregated and reported."""
    from locus import layout

    root = tmp_path_factory.mktemp("grid")
    params_file = methods_params(root)
    content = yaml.safe_load(params_file.read_text())
    content["methods"] = {k: v for k, v in content["methods"].items() if k in ("lora", "ia3", "prefix")}
    content["grid"]["seeds"] = [0, 1]
    content["evaluation"] = {"domains": ["arith"]}
    params_file.write_text(yaml.safe_dump(content))
    params = load(params_file)
    data = layout.data_dir(params, "arith")
    assert main(argv("prepare-data", params=params_file, domain="arith", out=data)) == 0
    base = layout.eval_base_path(params, "arith")
    assert main(argv("evaluate", params=params_file, model=tiny_model, domains="arith", out=base)) == 0
    for method, domain, lr, seed in layout.method_cells(params):
        run = dict(params=params_file, method=method)
        init, cell = layout.init_dir(params, seed, method), layout.cell_dir(params, domain, lr, seed, method)
        if not init.exists():
            assert main(argv("init-adapter", **run, model=tiny_model, seed=seed, out=init)) == 0
        assert main(argv("train", **run, model=tiny_model, data=data, init=init, lr=lr, seed=seed, out=cell)) == 0
        final = cell / "adapter_final"
        assert (
            main(argv("effective", **run, model=tiny_model, init=init, final=final, out=cell / "effective.parquet"))
            == 0
        )
        assert (
            main(
                argv(
                    "represent", **run, model=tiny_model, adapter=final, data=data, out=cell / "representation.parquet"
                )
            )
            == 0
        )
        assert main(argv("evaluate", **run, model=tiny_model, adapter=final, out=cell / "eval.json")) == 0
        if method == "lora":
            metrics = cell / "metrics.json"
            assert main(argv("delta", **run, init=init, final=final, metrics=metrics, out=cell / "delta.parquet")) == 0
    results = root / "res"
    assert main(argv("aggregate", params=params_file, out_dir=results)) == 0
    assert (
        main(
            argv("report", params=params_file, tables=results, out=results / "report.html", figures=results / "figures")
        )
        == 0
    )
    return results


def test_methods_tables(method_grid):
    import pandas as pd

    layers = pd.read_parquet(method_grid / "methods_layers.parquet")
    assert set(layers.method) == {"lora", "ia3", "prefix"} and len(layers) == 3 * 2 * 3  # methods × seeds × layers
    weights = layers[layers.kind != "prefix"]
    assert weights.rel_fro.gt(0).all() and layers[layers.kind == "prefix"].rel_fro.isna().all()
    # attention's share of the adapted weights: IA³ scales k, v (attention) and down_proj's inputs
    assert weights.attention_w0_share.between(0, 1, inclusive="neither").all()
    assert weights.groupby(["method", "layer"]).attention_w0_share.nunique().eq(1).all()  # W₀ alone: no seed in it
    prefix = layers[layers.kind == "prefix"]
    assert prefix.added_fro.gt(0).all() and prefix.added_rel.isna().all()  # from PEFT's zero start
    assert layers.rep_change.notna().all()
    rho = pd.read_parquet(method_grid / "methods_rho.parquet")
    same = rho[(rho.method_a == rho.method_b)]
    assert (same.seed_a != same.seed_b).all() and (rho[rho.method_a != rho.method_b].eval("seed_a == seed_b")).all()
    assert not rho[(rho.metric == "rel_fro") & ((rho.method_a == "prefix") | (rho.method_b == "prefix"))].size
    evaluation = pd.read_parquet(method_grid / "methods_evaluation.parquet")
    assert sorted(evaluation.method.unique()) == ["ia3", "lora", "prefix"] and len(evaluation) == 6
    assert evaluation.in_domain.all() and evaluation.delta_loss.notna().all()
    runs = pd.read_parquet(method_grid / "methods_runs.parquet")
    assert len(runs) == 6 and runs.eval_loss_after.notna().all()
    # IA³: k and v outputs (32 each) and down_proj's inputs (128) per layer; prefix: 4 tokens × 3 layers × (k, v) × 32
    assert runs.groupby("method").trainable_parameters.first()[["ia3", "prefix"]].tolist() == [
        3 * (32 + 32 + 128),
        4 * 3 * 2 * 32,
    ]


def test_methods_section_renders(method_grid):
    page = (method_grid / "report.html").read_text()
    for title in (
        "Methods: where each method changes the weights",
        "Methods: do the maps agree?",
        "Methods: cost and effect",
    ):
        assert title in page, title
    assert "ia3 @ 0.02 vs lora @ 0.001: ρ =" in page and "seed to seed" in page
    assert "trainable parameters, eval-loss gain" in page


def test_snakemake_runs_every_method_and_dvc_one(tmp_path):
    """presets/methods.yaml through Snakemake (dry run): every method's cells at its own learning rates,
    each job told its method; DVC runs the same commands for the experiment's one method (`method`)."""
    from test_trajectory import workflow_commands

    from conftest import copy_repo

    root = copy_repo(tmp_path / "repo")
    content = yaml.safe_load((root / "params.yaml").read_text())
    preset = yaml.safe_load((root / "presets" / "methods.yaml").read_text())
    content.update({k: v for k, v in preset.items() if k in ("method", "methods", "grid")})
    (root / "params.yaml").write_text(yaml.safe_dump(content, sort_keys=False))
    smk, dvc = workflow_commands(root, "train")
    per_method = {
        m: len(preset["methods"][m].get("learning_rates", preset["grid"]["learning_rates"])) for m in preset["methods"]
    }
    assert len(smk) == 2 * 2 * sum(per_method.values())  # domains × seeds × each method's LRs
    assert any("--method prefix " in c and "--lr 0.01 " in c and "/prefix/lr=0.01/" in c for c in smk)
    assert all(f"--method {c.split('--out ')[1].split('/')[3]} " in c for c in smk)  # the path's method is the job's
    assert dvc and dvc <= smk and all("--method lora " in c for c in dvc)


def test_the_findings_tables_script_reads_a_methods_run(method_grid):
    """benchmarks/methods_tables.py (docs/findings/methods/tables.md) on the tiny run: every section,
    every method, the held-out evaluation's gain and forgetting."""
    from methods_tables import tables_markdown

    text = tables_markdown(method_grid)
    for heading in (
        "## 1. Each method's map",
        "## 2. Do the maps agree?",
        "## 3. Attention",
        "## 4. Cost",
        "## 5. Held-out",
    ):
        assert heading in text
    for method in ("lora", "ia3", "prefix"):
        assert f"| {method} @ " in text
    held_out = text.split("## 5. Held-out")[1]
    assert held_out.count("\n| ") == 1 + 3  # header + lora, ia3, prefix (one domain, one LR each)


def test_the_report_notes_are_extracted_with_their_sections(method_grid):
    from methods_tables import report_notes

    notes = report_notes((method_grid / "report.html").read_text())
    assert "### Methods: do the maps agree?" in notes and "### Methods: cost and effect" in notes
    body = notes.split("-->", 1)[1]
    assert "<p" not in body and "</" not in body and "&amp;" not in body  # tags stripped, entities decoded
