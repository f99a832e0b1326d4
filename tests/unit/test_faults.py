"""Bad inputs fail early with one line naming the file/line/key and write nothing; a killed stage
leaves no partial output.

Faults injected into training itself (SIGKILL, NaN, full disk) are in test_resume.py; the
source-level guarantees (atomic writes, safe loading) in test_safe_loading.py.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from conftest import RECORDS, argv, write_params
from locus.cli import main

GOOD = [json.dumps(r) for r in RECORDS]


def jsonl(*lines: str) -> bytes:
    return "".join(line + "\n" for line in lines).encode()


# (id, raw files {name: bytes}, params overrides, --domain, expected text in the one error line)
PREPARE_DATA = [
    (
        "malformed_jsonl",
        {"arith.jsonl": jsonl(*GOOD[:2], '{"instruction": "x",', *GOOD[2:])},
        {},
        "arith",
        "arith.jsonl:3: malformed JSON",
    ),
    (
        "malformed_json_array",
        {"arith.json": b'[{"instruction": "a", "response": "b"},\n{"instruction": }]'},
        {},
        "arith",
        "arith.json:2: malformed JSON",
    ),
    ("not_an_object", {"arith.jsonl": jsonl(GOOD[0], "[1, 2]")}, {}, "arith", "arith.jsonl:2: expected a JSON object"),
    (
        "missing_response",
        {"arith.jsonl": jsonl(GOOD[0], '{"instruction": "hi"}')},
        {},
        "arith",
        "arith.jsonl:2: no known field pair",
    ),
    (
        "empty_response",
        {"arith.jsonl": jsonl(GOOD[0], '{"instruction": "hi", "response": "  "}')},
        {},
        "arith",
        "arith.jsonl:2: response is missing or empty",
    ),
    (
        "empty_instruction",
        {"arith.jsonl": jsonl(*GOOD[:3], '{"prompt": "", "completion": "x"}')},
        {},
        "arith",
        "arith.jsonl:4: instruction is missing or empty",
    ),
    (
        "bad_chat_turns",
        {"arith.jsonl": jsonl('{"messages": [{"role": "assistant", "content": "x"}]}')},
        {},
        "arith",
        "arith.jsonl:1: 'messages' must hold one user then one assistant turn",
    ),
    (
        "non_utf8",
        {"arith.jsonl": jsonl(*GOOD[:3]) + b'{"instruction": "caf\xe9", "response": "x"}\n'},
        {},
        "arith",
        "arith.jsonl:4: not UTF-8",
    ),
    ("empty_file", {"arith.jsonl": b""}, {}, "arith", "arith.jsonl: empty dataset"),
    ("blank_lines_only", {"arith.jsonl": b"\n  \n\n"}, {}, "arith", "arith.jsonl: empty dataset"),
    ("empty_json_array", {"arith.json": b"[]"}, {}, "arith", "arith.json: empty dataset"),
    (
        "domain_without_file",
        {"arith.jsonl": jsonl(*GOOD)},
        {"grid": {"domains": ["arith", "ghost"]}},
        "ghost",
        "grid.domains: no dataset for domain 'ghost'",
    ),
    (
        "two_files_one_domain",
        {"arith.jsonl": jsonl(*GOOD), "arith.json": json.dumps(RECORDS).encode()},
        {},
        "arith",
        "keep one",
    ),
    ("no_eval_example", {"arith.jsonl": jsonl(GOOD[0])}, {}, "arith", "eval split is empty"),
]


def error_line(capsys, stage: str) -> str:
    """The stage's error, which must be exactly one line (model-loading progress bars aside)."""
    lines = re.findall(rf"locus {stage}: [^\r\n]*", capsys.readouterr().err)  # a progress bar may precede it
    assert len(lines) == 1, lines
    return lines[0]


@pytest.mark.parametrize(
    "files, overrides, domain, expected", [case[1:] for case in PREPARE_DATA], ids=[case[0] for case in PREPARE_DATA]
)
def test_bad_dataset_is_refused_and_nothing_written(tmp_path, capsys, files, overrides, domain, expected):
    raw = tmp_path / "raw"
    raw.mkdir()
    for name, content in files.items():
        (raw / name).write_bytes(content)
    params = write_params(tmp_path / "p.yaml", raw, tmp_path / "res", **overrides)
    out = tmp_path / "res" / "data" / domain
    assert main(argv("prepare-data", params=params, domain=domain, out=out)) == 1
    assert expected in error_line(capsys, "prepare-data")
    assert not (tmp_path / "res").exists(), "a refused input must write nothing"


# (id, params overrides, the key the one-line error must name)
BAD_PARAMS = [
    ("r_zero", {"lora": {"r": 0}}, "lora.r"),
    ("alpha_negative", {"lora": {"r": 4, "alpha": -8}}, "lora.alpha"),
    ("lr_zero", {"grid": {"domains": ["arith"], "learning_rates": [0.0]}}, "grid.learning_rates"),
    ("lr_absurd", {"grid": {"domains": ["arith"], "learning_rates": [5.0]}}, "grid.learning_rates"),
    ("dvc_lr_negative", {"lr": -0.001}, "lr"),
    ("dropout_one", {"lora": {"dropout": 1.0}}, "lora.dropout"),
    ("no_target_modules", {"lora": {"target_modules": []}}, "lora.target_modules"),
    ("max_length_tiny", {"training": {"max_seq_length": 4}}, "training.max_seq_length"),
    ("overlength_policy", {"training": {"overlength": "ignore"}}, "training.overlength"),
    ("checkpoint_every_fractional_steps", {"training": {"checkpoint_every": 2.5}}, "training.checkpoint_every"),
    ("eval_fraction", {"data": {"eval_fraction": 1.5}}, "data.eval_fraction"),
    ("quantization_method", {"quantization": {"method": "int3"}}, "quantization.method"),
    ("unknown_key", {"trainig": {"epochs": 1}}, "trainig"),
]


@pytest.mark.parametrize("overrides, key", [c[1:] for c in BAD_PARAMS], ids=[c[0] for c in BAD_PARAMS])
def test_bad_params_are_refused_naming_the_key(tmp_path, arith_raw, capsys, overrides, key):
    params = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", **overrides)
    out = tmp_path / "res" / "data" / "arith"
    assert main(argv("prepare-data", params=params, domain="arith", out=out)) == 2
    line = error_line(capsys, "prepare-data")
    assert str(params) in line and re.search(rf"(^|[ +]){re.escape(key)}(\.\d+)?:", line.split(": ", 1)[1]), line
    assert not (tmp_path / "res").exists()


@pytest.fixture(scope="module")
def cell_inputs(tmp_path_factory, tiny_model):
    """A prepared data dir and an initial adapter for the train / init-adapter cases."""
    root = tmp_path_factory.mktemp("faults")
    raw = root / "raw"
    raw.mkdir()
    (raw / "arith.jsonl").write_bytes(jsonl(*GOOD))
    params = write_params(root / "p.yaml", raw, root / "res")
    assert main(argv("prepare-data", params=params, domain="arith", out=root / "data")) == 0
    assert main(argv("init-adapter", params=params, model=tiny_model, seed="0", out=root / "adapter_init")) == 0
    return root


def small_train(data: Path) -> None:
    (data / "train.jsonl").write_bytes(jsonl(GOOD[0]))


def overlapping_eval(data: Path) -> None:
    first_train = (data / "train.jsonl").read_text().splitlines()[0]
    (data / "eval.jsonl").write_text((data / "eval.jsonl").read_text() + first_train + "\n")


def bad_eval_line(data: Path) -> None:
    (data / "eval.jsonl").write_text((data / "eval.jsonl").read_text() + '{"instruction": "x"}\n')


def no_bitsandbytes(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "bitsandbytes", None)  # import bitsandbytes -> ImportError


# (id, params overrides, data mutation, --lr, patch, expected text in the one error line)
TRAIN = [
    ("smaller_than_one_batch", {}, small_train, "0.001", None, "train.jsonl: 1 examples, fewer than one batch"),
    ("train_eval_overlap", {}, overlapping_eval, "0.001", None, "eval.jsonl: 1 instructions also in"),
    ("malformed_prepared_line", {}, bad_eval_line, "0.001", None, "eval.jsonl:"),
    (
        "all_dropped_overlength",
        {"training": {"max_seq_length": 16, "overlength": "drop"}},
        None,
        "0.001",
        None,
        "train.jsonl: no example left after applying max_seq_length=16",
    ),
    ("lr_zero", {}, None, "0", None, "--lr 0.0 is outside (0, 1]"),
    ("lr_absurd", {}, None, "30", None, "--lr 30.0 is outside (0, 1]"),
    (
        "nf4_without_bitsandbytes",
        {"quantization": {"method": "nf4"}},
        None,
        "0.001",
        no_bitsandbytes,
        "quantization.method: nf4 needs bitsandbytes",
    ),
]


@pytest.mark.parametrize("overrides, mutate, lr, patch, expected", [c[1:] for c in TRAIN], ids=[c[0] for c in TRAIN])
def test_bad_train_input_is_refused_and_nothing_written(
    tmp_path, cell_inputs, tiny_model, monkeypatch, capsys, overrides, mutate, lr, patch, expected
):
    data, cell = tmp_path / "data", tmp_path / "cell"
    shutil.copytree(cell_inputs / "data", data)
    shutil.copytree(cell_inputs / "adapter_init", cell / "adapter_init")
    if mutate:
        mutate(data)
    if patch:
        patch(monkeypatch)
    params = write_params(
        tmp_path / "p.yaml", cell_inputs / "raw", tmp_path / "res", **{"quantization": {"method": "none"}, **overrides}
    )
    assert (
        main(
            argv(
                "train",
                params=params,
                model=tiny_model,
                data=data,
                init=cell / "adapter_init",
                lr=lr,
                seed="0",
                out=cell,
            )
        )
        == 1
    )
    assert expected in error_line(capsys, "train")
    assert sorted(p.name for p in cell.iterdir()) == ["adapter_init"], "a refused input must write nothing"


def test_unknown_target_module_lists_the_models_modules(tmp_path, tiny_model, arith_raw, capsys):
    params = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", lora={"target_modules": ["q_proj", "qkv"]})
    out = tmp_path / "adapter_init"
    assert main(argv("init-adapter", params=params, model=tiny_model, seed="0", out=out)) == 1
    line = error_line(capsys, "init-adapter")
    assert "lora.target_modules: ['qkv'] not in the model; available:" in line and "down_proj" in line
    assert not out.exists()


def test_pickled_weights_are_refused(tmp_path, tiny_model, arith_raw, capsys):
    """A model directory with only pytorch_model.bin (a pickle) is never loaded."""
    from safetensors.torch import load_file

    model = tmp_path / "pickled"
    shutil.copytree(tiny_model, model)
    torch.save(load_file(model / "model.safetensors"), model / "pytorch_model.bin")
    (model / "model.safetensors").unlink()
    params = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res")
    out = tmp_path / "adapter_init"
    assert main(argv("init-adapter", params=params, model=model, seed="0", out=out)) == 1
    assert "model.safetensors" in error_line(capsys, "init-adapter")
    assert not out.exists()


def test_overlength_examples_are_counted_per_policy(cell_inputs, tiny_model, capsys):
    from locus.params import load
    from locus.training.cell_data import load_split
    from locus.training.modeling import load_tokenizer
    from locus.training.records import read_records
    from locus.training.sft_data import encode

    tokenizer = load_tokenizer(tiny_model)
    path = cell_inputs / "varied.jsonl"  # responses of 1..12 sums, so lengths differ
    path.write_bytes(
        jsonl(
            *(json.dumps({"instruction": f"Add {k} numbers.", "response": " + ".join(["1"] * k)}) for k in range(1, 13))
        )
    )
    lengths = sorted(len(encode(tokenizer, r["instruction"], r["response"])["input_ids"]) for r in read_records(path))
    n, limit = len(lengths), lengths[len(lengths) // 2]
    over = sum(length > limit for length in lengths)
    assert 0 < over < n
    for policy, key in (("truncate", "truncated"), ("drop", "dropped")):
        params = load(
            write_params(
                cell_inputs / f"{policy}.yaml",
                cell_inputs / "raw",
                cell_inputs / "res",
                training={"max_seq_length": limit, "overlength": policy},
            )
        )
        dataset, counts = load_split(tokenizer, path, params)
        assert counts[key] == over and counts["truncated"] + counts["dropped"] == over
        assert len(dataset) == n - counts["dropped"] and max(len(x) for x in dataset["input_ids"]) <= limit
        assert f"{path}: {counts['truncated']} truncated, {counts['dropped']} dropped of {n}" in capsys.readouterr().out


# A stage killed mid-write leaves no file at its output path (io.atomic_path), and reruns cleanly.
KILL_MID_WRITE = textwrap.dedent("""
    import os, signal, sys
    import pandas as pd
    from locus.cli import main
    to_parquet = pd.DataFrame.to_parquet
    def half_then_die(self, path, *args, **kwargs):
        to_parquet(self, path, *args, **kwargs)
        with open(path, "r+b") as f:  # leave a torn file, as a kill mid-write would
            f.truncate(os.path.getsize(path) // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    pd.DataFrame.to_parquet = half_then_die
    sys.exit(main(sys.argv[1:]))
""")


def test_sigkilled_analysis_stage_leaves_no_output(tmp_path, cell_inputs):
    import pandas as pd

    final = tmp_path / "adapter_final"
    shutil.copytree(cell_inputs / "adapter_init", final)
    out = tmp_path / "cell" / "delta.parquet"
    args = argv("delta", params=cell_inputs / "p.yaml", init=cell_inputs / "adapter_init", final=final, out=out)
    proc = subprocess.run([sys.executable, "-c", KILL_MID_WRITE, *args], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists() and [p.name for p in out.parent.iterdir() if p.name.startswith(".delta.parquet.")]
    assert main(args) == 0
    assert len(pd.read_parquet(out)) == 3 * 6 * 2
