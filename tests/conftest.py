"""Shared fixtures: a tiny random Llama with a tiny byte-level tokenizer (built offline, in ms)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] "
    "+ '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

RECORDS = [
    {"instruction": f"What is {a} plus {b}?", "response": f"{a} + {b} = {a + b}. Answer: {a + b}"}
    for a in range(1, 9) for b in range(1, 5)
]


def build_tiny_model(path: Path, layers: int = 3) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator([r["instruction"] + " " + r["response"] for r in RECORDS], trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                   pad_token="<|im_end|>", unk_token="<|endoftext|>")
    fast.chat_template = CHATML
    config = LlamaConfig(vocab_size=len(fast), hidden_size=64, intermediate_size=128, num_hidden_layers=layers,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                         bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                         pad_token_id=fast.pad_token_id, tie_word_embeddings=True)
    torch.manual_seed(1234)
    LlamaForCausalLM(config).save_pretrained(path, safe_serialization=True)
    fast.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


def write_params(path: Path, raw_dir: Path, results: Path, **overrides) -> Path:
    """A params file for tests: the default schema with a tiny grid and small budgets."""
    params = {
        "results_dir": str(results),
        "grid": {"domains": ["arith"], "learning_rates": [0.001], "seeds": [0]},
        "data": {"raw_dir": str(raw_dir), "eval_fraction": 0.2},
        "lora": {"r": 4, "alpha": 8},
        "training": {"per_device_batch_size": 2, "grad_accum_steps": 2, "max_seq_length": 64},
    }
    for section, values in overrides.items():
        if isinstance(values, dict):
            params.setdefault(section, {}).update(values)
        else:
            params[section] = values
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.fixture
def arith_raw(tmp_path) -> Path:
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "arith.jsonl").write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    return raw


REPO = Path(__file__).resolve().parents[1]
# What a pipeline run needs from the repository (the package itself is installed in the venv).
PIPELINE_FILES = ["Snakefile", "workflow", "dvc.yaml", "params.yaml", "presets", "data/raw", "src"]


def copy_repo(dst: Path) -> Path:
    """A fresh working copy of the pipeline files, so integration runs never touch the checkout."""
    for item in PIPELINE_FILES:
        src, target = REPO / item, dst / item
        target.parent.mkdir(parents=True, exist_ok=True)
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, target)
    return dst


def run_tool(cwd: Path, *cmd: str, timeout: int = 1500) -> subprocess.CompletedProcess:
    """Run a command with the venv's bin/ first on PATH (where `locus`, snakemake and dvc live)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):  # CI machines may have no git identity
        env.setdefault(var, "Locus tests")
    for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        env.setdefault(var, "tests@locus.invalid")
    return subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
