"""Targeted-layer validation: --layers adapters, ranking and arm determinism, the verdict, the report."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import yaml
from safetensors.numpy import load_file

from conftest import argv, copy_repo, run_tool, write_params
from locus import layout
from locus.analysis.validation import arm_layers, draw_random_sets, paired_differences, rank_layers, verdict
from locus.cli import main
from locus.core.keys import lora_key as parse_key
from locus.params import ParamsError, load

VALIDATION = {
    "domains": ["arith"],
    "k": 1,
    "arms": ["top", "random0", "random1", "bottom"],
    "seeds": [0],
    "learning_rate": 0.001,
    "metric": "rel_fro",
}


def adapted_layers(adapter_dir) -> set[int]:
    return {parse_key(k)["layer"] for k in load_file(adapter_dir / "adapter_model.safetensors")}


def test_layers_restrict_the_adapter_and_train_keeps_them(tmp_path, tiny_model, arith_raw):
    params = write_params(
        tmp_path / "p.yaml", arith_raw, tmp_path / "res", quantization={"method": "none"}, training={"max_steps": 2}
    )
    common = ["--params", str(params)]
    init, data = tmp_path / "arm" / "adapter_init", tmp_path / "res" / "data" / "arith"
    assert main(argv("prepare-data", *common, domain="arith", out=data)) == 0
    assert main(argv("init-adapter", *common, model=tiny_model, seed="0", layers="2,0", out=init)) == 0
    assert adapted_layers(init) == {0, 2}
    assert json.loads((init / "adapter_config.json").read_text())["layers_to_transform"] == [0, 2]
    # The unchanged train stage trains whatever adapter it is given.
    assert (
        main(argv("train", *common, model=tiny_model, data=data, init=init, lr="0.001", seed="0", out=tmp_path / "arm"))
        == 0
    )
    final = load_file(tmp_path / "arm" / "adapter_final" / "adapter_model.safetensors")
    assert adapted_layers(tmp_path / "arm" / "adapter_final") == {0, 2}
    assert any(final[k].any() for k in final if ".lora_B." in k), "training changed nothing"
    metrics = json.loads((tmp_path / "arm" / "metrics.json").read_text())
    assert np.isfinite(metrics["eval_loss_after"])


def test_layers_out_of_range_or_malformed_fail_naming_the_flag(tmp_path, tiny_model, arith_raw, capsys):
    params = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res")
    for layers in ("0,3", "1,x", "1,1"):
        assert (
            main(argv("init-adapter", params=params, model=tiny_model, seed="0", layers=layers, out=tmp_path / "x"))
            == 1
        )
        assert "--layers" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def layer_table(values: dict[int, list[float]], domain="arith", lr=0.001) -> pd.DataFrame:
    """A layers.parquet-shaped table: {layer: [rel_fro at seed 0, seed 1, ...]}."""
    return pd.DataFrame(
        [
            {"domain": domain, "lr": lr, "seed": s, "layer": layer, "rel_fro": v}
            for layer, vs in values.items()
            for s, v in enumerate(vs)
        ]
    )


def test_ranking_averages_seeds_and_breaks_ties_by_layer():
    table = layer_table({0: [1.0, 3.0], 1: [5.0, 1.0], 2: [2.0, 2.0], 3: [0.5, 0.5]})
    table = pd.concat([table, layer_table({0: [9.0], 1: [9.0], 2: [9.0], 3: [9.0]}, lr=0.0002)])
    ranking = rank_layers(table, "arith", 0.001, "rel_fro")
    assert ranking["layer"].tolist() == [1, 0, 2, 3]  # means 3, 2, 2, 0.5: the 0/2 tie goes to layer 0
    assert ranking["value"].tolist() == [3.0, 2.0, 2.0, 0.5] and set(ranking["n_seeds"]) == {2}
    with pytest.raises(ValueError, match="validation.learning_rate"):
        rank_layers(table, "arith", 0.01, "rel_fro")


def test_arms_are_deterministic_and_well_formed():
    ranking = rank_layers(layer_table({i: [float(i % 7)] for i in range(30)}), "arith", 0.001, "rel_fro")
    arms = arm_layers(ranking, 4, ["top", "random0", "random1", "random2", "bottom"], 0, "arith")
    assert arms == arm_layers(ranking, 4, ["top", "random0", "random1", "random2", "bottom"], 0, "arith")
    assert arms["top"] == [6, 13, 20, 27] and arms["bottom"] == [7, 14, 21, 28] and arms["all"] == list(range(30))
    for name in ("random0", "random1", "random2"):
        assert len(set(arms[name])) == 4 and set(arms[name]) <= set(range(30)) and arms[name] == sorted(arms[name])
    assert len({tuple(arms[f"random{i}"]) for i in range(3)}) == 3
    # Another draw seed or another domain draws other sets; the top set does not move.
    other = arm_layers(ranking, 4, ["top", "random0"], 1, "arith")
    assert other["top"] == arms["top"] and other["random0"] != arms["random0"]
    assert draw_random_sets(list(range(30)), 4, 1, 0, "cpp") != draw_random_sets(list(range(30)), 4, 1, 0, "arith")
    with pytest.raises(ValueError, match="validation.k=30"):
        arm_layers(ranking, 30, ["top", "random0"], 0, "arith")


def test_random_sets_are_uniform_over_all_layers_including_top():
    """Nothing is excluded: each layer appears in about k/n of the draws, top layers included."""
    sets = draw_random_sets(list(range(10)), 3, 4000, 0, "arith")
    counts = np.bincount(np.concatenate(sets), minlength=10) / 4000
    assert np.allclose(counts, 0.3, atol=0.03)


@pytest.mark.parametrize(
    "diffs, seeds, outcome, text",
    [
        (
            [0.031, 0.02, 0.045, 0.028],
            2,
            "predictive",
            "top-k beats random-k by 0.031 ± 0.010 (mean ± sd of random − top, n=4)",
        ),
        ([0.03, -0.02, 0.01, 0.0], 2, "within noise", "within noise: the map is not shown to be predictive"),
        ([-0.05, -0.06, -0.055], 3, "anti-predictive", "random-k beats top-k by 0.055"),
        # One seed: a clear gap over draws is still no evidence against seed noise.
        ([0.031, 0.032], 1, "undetermined", "cannot be judged: 1 seed"),
    ],
)
def test_verdict(diffs, seeds, outcome, text):
    got, sentence = verdict(diffs, seeds)
    assert got == outcome and text in sentence


def test_paired_differences_pair_by_seed():
    table = pd.DataFrame(
        [
            {"domain": "d", "arm": "top", "seed": 0, "eval_loss_after": 1.0},
            {"domain": "d", "arm": "top", "seed": 1, "eval_loss_after": 2.0},
            {"domain": "d", "arm": "random0", "seed": 0, "eval_loss_after": 1.5},
            {"domain": "d", "arm": "random0", "seed": 1, "eval_loss_after": 2.1},
            {"domain": "d", "arm": "all", "seed": 0, "eval_loss_after": 0.1},
        ]
    )
    pairs = paired_differences(table).sort_values("seed")
    assert pairs["diff"].round(6).tolist() == [0.5, 0.1]


def test_params_validate_the_validation_section(tmp_path, arith_raw):
    ok = load(write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", validation=VALIDATION))
    assert ok.validation.random_arms == ["random0", "random1"]
    assert layout.validation_runs(ok)[-1] == ("arith", "all", 0)
    assert layout.arm_dir(ok, "arith", "all", 0) == layout.cell_dir(ok, "arith", 0.001, 0)
    bad = {
        "domains": (["cpp"], "validation.domains"),
        "learning_rate": (0.5, "validation.learning_rate"),
        "arms": (["top", "random1"], "validation.arms"),
        "k": (0, "validation.k"),
    }
    for key, (value, message) in bad.items():
        path = write_params(
            tmp_path / f"{key}.yaml", arith_raw, tmp_path / "res", validation={**VALIDATION, key: value}
        )
        with pytest.raises(ParamsError, match=message):
            load(path)
    assert load(write_params(tmp_path / "off.yaml", arith_raw, tmp_path / "res")).validation.domains == []


def test_rank_layers_and_report_stages(tmp_path, arith_raw):
    """rank-layers → arms.json (twice: identical); validation-report over hand-written metrics."""
    params_file = write_params(
        tmp_path / "p.yaml", arith_raw, tmp_path / "res", validation={**VALIDATION, "seeds": [0, 1]}
    )
    params = load(params_file)
    layers = tmp_path / "layers.parquet"
    layer_table({0: [0.1, 0.2], 1: [0.9, 0.8], 2: [0.4, 0.5]}).to_parquet(layers)
    arms_json = layout.arms_path(params, "arith")
    common = ["--params", str(params_file)]
    assert main(argv("rank-layers", *common, layers=layers, domain="arith", out=arms_json)) == 0
    first = arms_json.read_bytes()
    assert main(argv("rank-layers", *common, layers=layers, domain="arith", out=arms_json)) == 0
    assert arms_json.read_bytes() == first
    doc = json.loads(first)
    assert doc["arms"]["top"] == [1] and doc["arms"]["bottom"] == [0] and doc["arms"]["all"] == [0, 1, 2]
    assert [r["layer"] for r in doc["ranking"]] == [1, 2, 0]

    # Top-k better than both random draws at both seeds by ~0.1, with a little noise.
    losses = {
        "top": [1.00, 1.02],
        "random0": [1.10, 1.14],
        "random1": [1.12, 1.12],
        "bottom": [1.3, 1.3],
        "all": [0.95, 0.96],
    }
    for domain, arm, seed in layout.validation_runs(params):
        run = layout.arm_dir(params, domain, arm, seed)
        run.mkdir(parents=True, exist_ok=True)
        (run / "metrics.json").write_text(
            json.dumps(
                {
                    "eval_loss_before": 2.0,
                    "eval_loss_after": losses[arm][seed],
                    "optimizer_steps": 3,
                    "train_seconds": 1.0,
                }
            )
        )
    out, table = tmp_path / "validation.html", tmp_path / "validation.parquet"
    assert main(argv("validation-report", *common, out=out, table=table)) == 0
    df = pd.read_parquet(table)
    assert len(df) == 5 * 2 and set(df["arm"]) == set(losses)
    assert df.set_index(["arm", "seed"]).loc[("random1", 1), "eval_loss_after"] == 1.12
    page = out.read_text()
    assert "top-k beats random-k by 0.110" in page and "beyond seed noise" in page
    assert "cdn" not in page.lower() and "vegaEmbed" in page and "validation_arith_0" in page

    # Make the top arm no better than random: the verdict flips to "within noise".
    for seed, loss in ((0, 1.13), (1, 1.09)):
        path = layout.arm_dir(params, "arith", "top", seed) / "metrics.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "eval_loss_after": loss}))
    assert main(argv("validation-report", *common, out=out, table=table)) == 0
    assert "within noise: the map is not shown to be predictive" in out.read_text()


def test_report_refuses_when_off(tmp_path, arith_raw, capsys):
    params_file = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res")
    assert (
        main(argv("validation-report", params=params_file, out=tmp_path / "v.html", table=tmp_path / "v.parquet")) == 1
    )
    assert "validation.domains is empty" in capsys.readouterr().err


def test_snakemake_and_dvc_run_the_same_arm_commands(tmp_path):
    """With validation on, both wirings run identical per-arm commands (dry runs: no model needed)."""
    root = copy_repo(tmp_path)
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["validation"].update(domains=["physics"], seeds=[0, 1])
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    dry = run_tool(root, "snakemake", "-n", "-p", "--forceall", "--cores", "1", "--", "results/validation.html")
    assert dry.returncode == 0, dry.stdout[-3000:] + dry.stderr[-3000:]
    prefix = "Shell command: "
    smk = {
        " ".join(line[len(prefix) :].split("2>&1")[0].split())
        for line in dry.stdout.splitlines()
        if line.startswith(prefix) and "results/validation/" in line and "rank-layers" not in line
    }
    assert run_tool(root, "dvc", "init", "--no-scm", "-q").returncode == 0
    from dvc.repo import Repo

    with Repo(str(root)) as repo:
        dvc = {
            " ".join(s.cmd.split())
            for s in repo.index.stages
            if s.name.startswith(("validation_init", "validation_train"))
        }
    assert len(smk) == 2 * 4 * 2 and smk == dvc  # {init, train} x 4 arms x 2 seeds
    assert "--lr 0.001 --seed 1 --out results/validation/physics/random2/seed=1" in " ".join(sorted(smk))
    # The all-layer arm at seed 1 (not a grid seed) is an extra grid cell, trained by rule train.
    assert "--lr 0.001 --seed 1 --out results/runs/physics/lora/lr=0.001/seed=1 " in dry.stdout
