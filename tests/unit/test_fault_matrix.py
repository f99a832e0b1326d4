"""Every (input kind × fault kind): exit status ≠ 0, one line `locus <stage>: error: <path>…` on
stderr, no traceback, nothing written at the output path.

The inputs are real files made once by the real stages on a tiny random Llama (a model, its W₀
quantized once, a trained cell, a cell's metrics, an aggregated table); each case copies the one
file it breaks.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from conftest import argv, cell_argv, on_cell, train_tiny_cell, write_params, write_raw
from locus.cli import main

CELL = "runs/arith/lora/lr=0.001/seed=0"  # the one cell, relative to the results tree
ARMS = "validation/arith/arms.json"  # its targeted-layer validation: arms top and random0
EVAL_BASE = "runs/arith/eval_base.json"  # the base model's score: every cell's eval loss before training
FAULTS = {
    "missing": lambda p: p.unlink(),
    "empty": lambda p: p.write_bytes(b""),
    # A YAML file cut in half usually still parses (a valid, shorter params file the schema then
    # checks): end it in a quoted string never closed, the way a truncated one fails to parse.
    "truncated": lambda p: p.write_bytes(
        p.read_bytes()[: max(1, p.stat().st_size // 2)] + (b'\n"' if p.suffix == ".yaml" else b"")
    ),
    "garbage": lambda p: p.write_bytes(b"\x00\xffnot what it should be\x80" * 4),
}


@pytest.fixture(scope="module")
def made(tmp_path_factory, tiny_model):
    """A params file, a prepared split, one trained cell (init, final, metrics) and its tables."""
    root = tmp_path_factory.mktemp("made")
    raw = write_raw(root / "raw")
    # snapshot_every beyond the run's steps: one snapshot, after the last step (for `locus trajectory`)
    params = write_params(
        root / "p.yaml",
        raw,
        root / "res",
        quantization={"method": "none"},
        training={"snapshot_every": 1000},
        trajectory={"domains": ["arith"]},
        validation={"domains": ["arith"], "k": 1, "arms": ["top", "random0"], "seeds": [0], "learning_rate": 0.001},
    )
    cell = train_tiny_cell(root, tiny_model, params, CELL)
    data = root / "res/data/arith"
    on_cell("delta", params, cell, metrics=cell / "metrics.json", out=cell / "delta.parquet")
    on_cell("effective", params, cell, model=tiny_model, out=cell / "effective.parquet")
    adapter, out = cell / "adapter_final", cell / "representation.parquet"
    assert main(argv("represent", params=params, model=tiny_model, adapter=adapter, data=data, out=out)) == 0
    assert main(argv("aggregate", params=params, out_dir=root / "res")) == 0
    assert main(argv("evaluate", params=params, model=tiny_model, domains="arith", out=root / "res" / EVAL_BASE)) == 0
    arms = root / "res" / ARMS
    assert main(argv("rank-layers", params=params, layers=root / "res/layers.parquet", domain="arith", out=arms)) == 0
    for arm in ("top", "random0"):  # validation-report reads an arm run's metrics.json only: the cell's
        (arms.parent / arm / "seed=0").mkdir(parents=True)
        shutil.copy(cell / "metrics.json", arms.parent / arm / "seed=0" / "metrics.json")
    # W₀ quantized once (NF4 params; `effective --w0` reads it)
    nf4 = write_params(root / "nf4.yaml", raw, root / "res", quantization={"method": "nf4"})
    w0 = root / "base-w0.safetensors"
    assert main(argv("quantize-base", params=nf4, model=tiny_model, out=w0)) == 0
    return {"root": root, "params": params, "model": tiny_model, "cell": cell, "data": data, "nf4": nf4, "w0": w0}


def copy_of(made, tmp_path, what: str) -> dict:
    """A private copy of the tree `what` lives in (model, cell, data or tables), paths to use."""
    paths = dict(made)
    if what == "model":
        paths["model"] = Path(shutil.copytree(made["model"], tmp_path / "model"))
    elif what == "cell":
        paths["cell"] = Path(shutil.copytree(made["cell"], tmp_path / "cell"))
    elif what == "data":
        paths["data"] = Path(shutil.copytree(made["data"], tmp_path / "data"))
    elif what == "tables":
        paths["tables"] = Path(
            shutil.copytree(made["root"] / "res", tmp_path / "res", ignore=shutil.ignore_patterns("runs", "data"))
        )
    elif what == "params":
        paths["params"] = Path(shutil.copy(made["params"], tmp_path / "p.yaml"))
    elif what == "w0":
        paths["w0"] = Path(shutil.copy(made["w0"], tmp_path / "base-w0.safetensors"))
    elif what == "preset":  # presets/ beside a copy of the params file, the command run from there
        (tmp_path / "presets").mkdir()
        paths["preset"] = tmp_path
        paths["cwd"] = tmp_path
        shutil.copy(made["params"], tmp_path / "p.yaml")
        (tmp_path / "presets" / "mine.yaml").write_text("training:\n  epochs: 1\ndata:\n  eval_fraction: 0.2\n")
    elif what == "grid":  # the whole results tree, and a params file pointing at the copy
        paths["grid"] = Path(shutil.copytree(made["root"] / "res", tmp_path / "res"))
        raw = yaml.safe_load(made["params"].read_text()) | {"results_dir": str(paths["grid"])}
        paths["params"] = tmp_path / "p.yaml"
        paths["params"].write_text(yaml.safe_dump(raw))
    return paths


# (input kind, the tree it lives in, the file broken relative to it, the command that reads it, output)
def delta_cmd(p, out):
    return cell_argv("delta", p["params"], p["cell"], metrics=p["cell"] / "metrics.json", out=out)


def effective_cmd(p, out):
    return cell_argv("effective", p["params"], p["cell"], model=p["model"], out=out)


def effective_w0_cmd(p, out):
    return cell_argv("effective", p["nf4"], p["cell"], model=p["model"], w0=p["w0"], out=out)


def init_cmd(p, out):
    return argv("init-adapter", params=p["params"], model=p["model"], seed=0, out=out)


def report_cmd(p, out):
    return argv("report", params=p["params"], tables=p["tables"], out=out, figures=out.parent / "figures")


def trajectory_cmd(p, out):
    return cell_argv(
        "trajectory", p["params"], p["cell"], model=p["model"], snapshots=p["cell"] / "trajectory", out=out
    )


def preset_cmd(p, out):
    return delta_cmd(p, out) + ["--preset", "mine"]


def aggregate_cmd(p, out):
    return argv("aggregate", params=p["params"], out_dir=out)


def train_cmd(p, out):
    return argv(
        "train",
        params=p["params"],
        model=p["model"],
        data=p["data"],
        init=p["cell"] / "adapter_init",
        lr="0.001",
        seed=0,
        out=out,
    )


def rank_cmd(p, out):
    return argv("rank-layers", params=p["params"], layers=p["tables"] / "layers.parquet", domain="arith", out=out)


def validation_report_cmd(p, out):
    return argv("validation-report", params=p["params"], out=out, table=out.parent / "validation.parquet")


def train_before_cmd(p, out):
    return train_cmd(p, out) + ["--before", str(p["grid"] / EVAL_BASE)]


# Per command, the inputs it reads: (what, the tree it lives in, the file broken relative to it).
INPUTS = {
    delta_cmd: [
        ("adapter weights", "cell", "adapter_final/adapter_model.safetensors"),
        ("initial adapter weights", "cell", "adapter_init/adapter_model.safetensors"),
        ("cell metrics", "cell", "metrics.json"),
        ("params file", "params", ""),
    ],
    preset_cmd: [("preset file", "preset", "presets/mine.yaml")],
    effective_cmd: [
        ("adapter weights", "cell", "adapter_final/adapter_model.safetensors"),
        ("adapter config", "cell", "adapter_final/adapter_config.json"),
        ("model weights", "model", "model.safetensors"),
    ],
    effective_w0_cmd: [("W₀ quantized once", "w0", "")],
    init_cmd: [("model weights", "model", "model.safetensors"), ("model config", "model", "config.json")],
    train_cmd: [("tokenizer", "model", "tokenizer.json"), ("prepared split", "data", "train.jsonl")],
    train_before_cmd: [("base model's eval score", "grid", EVAL_BASE)],
    report_cmd: [("layer table", "tables", "layers.parquet")],
    aggregate_cmd: [
        ("cell delta table", "grid", f"{CELL}/delta.parquet"),
        ("cell representation table", "grid", f"{CELL}/representation.parquet"),
        ("cell metrics", "grid", f"{CELL}/metrics.json"),
    ],
    rank_cmd: [("layer table", "tables", "layers.parquet")],
    validation_report_cmd: [
        ("arm layer sets", "grid", ARMS),
        ("arm run metrics", "grid", "validation/arith/top/seed=0/metrics.json"),
    ],
    trajectory_cmd: [("adapter snapshot", "cell", "trajectory/step=*.safetensors")],
}
CASES = [
    (f"{what} ({command.__name__.removesuffix('_cmd')})", fault, tree, relative, command)
    for command, inputs in INPUTS.items()
    for what, tree, relative in inputs
    for fault in FAULTS
]


@pytest.mark.parametrize("kind, fault, tree, relative, command", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_a_bad_input_gives_one_line_naming_it_and_writes_nothing(
    made, tmp_path, capsys, monkeypatch, kind, fault, tree, relative, command
):
    paths = copy_of(made, tmp_path, tree)
    if "cwd" in paths:
        monkeypatch.chdir(paths["cwd"])
    broken = paths[tree] / relative if relative else paths[tree]
    if "*" in relative:
        (broken,) = paths[tree].glob(relative)
    FAULTS[fault](broken)
    out = tmp_path / "out" / "result"
    capsys.readouterr()
    code = main(command(paths, out))
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    stage = command(paths, out)[0]
    assert code != 0, (kind, fault)
    assert len(lines) == 1 and lines[0].startswith(f"locus {stage}: error: "), err[-2000:]
    # a missing snapshot leaves its directory without any: then the directory is the one named
    named = broken.name in lines[0] or (fault == "missing" and "*" in relative and str(broken.parent) in lines[0])
    assert named and "Traceback" not in err, lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*")), "an output was written"


def test_the_matrix_covers_every_input_with_every_fault():
    assert len(CASES) == sum(map(len, INPUTS.values())) * len(FAULTS) == 88
