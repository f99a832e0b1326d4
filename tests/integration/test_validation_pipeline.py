"""Integration: the targeted-layer validation through Snakemake, on the tests' tiny random Llama.

One domain, one grid cell, k=2, two random draws, one seed, 4 training examples: 4 trainings
(the grid cell, which is also the all-layer arm, then top, random0 and random1). Training the
all-layer arm at a seed outside the grid is checked by the dry run in test_validation.py.
"""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from conftest import copy_repo, run_tool

PRESET = """\
results_dir: results/valtest
grid: {domains: [physics], learning_rates: [0.001], seeds: [0]}
training: {per_device_batch_size: 2, grad_accum_steps: 1, max_seq_length: 128}
data: {max_train_examples: 4, max_eval_examples: 2}
validation: {domains: [physics], k: 2, arms: [top, random0, random1], seeds: [0], learning_rate: 0.001}
"""


@pytest.fixture(scope="module")
def run(tmp_path_factory, tiny_real_data_model):
    work = copy_repo(tmp_path_factory.mktemp("validation"))
    # The rules' wiring is under test (the real model's map is the smoke run's business).
    (work / "presets" / "valtest.yaml").write_text(PRESET + f"model: {{source: {tiny_real_data_model}}}\n")
    start = time.perf_counter()
    done = run_tool(
        work, "snakemake", "--cores", "2", "--config", "preset=valtest", "--", "results/valtest/validation.html"
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    print(f"validation pipeline wall time: {time.perf_counter() - start:.0f} s")
    return work / "results" / "valtest"


def test_every_arm_and_seed_is_in_the_table(run):
    table = pd.read_parquet(run / "validation.parquet")
    assert sorted(map(tuple, table[["arm", "seed"]].values.tolist())) == [
        (a, 0) for a in ("all", "random0", "random1", "top")
    ]
    assert (table["eval_loss_after"] > 0).all() and (table["optimizer_steps"] >= 2).all()
    assert set(table.loc[table["arm"] != "all", "n_layers"]) == {2} and set(
        table.loc[table["arm"] == "all", "n_layers"]
    ) == {3}
    print(table[["arm", "seed", "layers", "eval_loss_after", "train_seconds"]].to_string())


def test_arm_adapters_hold_only_their_layers(run):
    arms = json.loads((run / "validation" / "physics" / "arms.json").read_text())
    assert sorted(r["layer"] for r in arms["ranking"][:2]) == arms["arms"]["top"]
    for arm in ("top", "random0", "random1"):
        config = json.loads(
            (run / "validation" / "physics" / arm / "seed=0" / "adapter_final" / "adapter_config.json").read_text()
        )
        assert config["layers_to_transform"] == arms["arms"][arm]


def test_the_page_has_a_verdict_and_a_chart(run):
    page = (run / "validation.html").read_text()
    assert "n=2" in page and "cannot be judged: 1 seed" in page  # one seed: no verdict on seed noise
    assert "validation_physics_0" in page and "cdn.jsdelivr" not in page
