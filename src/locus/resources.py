"""How much memory a cluster job needs for the model it loads (SLURM resources; workflow/rules/common.smk).

A job that loads the base holds its weights in `model.dtype` and, while loading, parts of the
file's tensors too: it needs at least LOAD_FACTOR × the model's bytes plus the runtime's own
(Python, torch, transformers ≈ RUNTIME_MB), whatever `cluster.mem_mb` says — 4 GB would not load a
3B model in float32 (12.8 GB). The size is read from the safetensors headers of the prepared
model directory (or of `model.source` when that is a local directory, for the job that prepares
it), without reading a tensor; before either exists the configured value stands, and Snakemake
evaluates resources again when the job is about to be submitted. A hub id in `model.source` has no
size to read before it is downloaded: give the prepare_model job its memory on the command line
(`--set-resources prepare_model:mem_mb=32000`).
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from locus.io import reading

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
LOAD_FACTOR, RUNTIME_MB = 2.5, 1500
# Full fine-tuning holds float32 weights, gradients and AdamW's two moments (16 bytes per parameter)
# whatever model.dtype says, plus activations: on a CPU node all of it is in the job's memory.
FULL_FT_BYTES = 18


def parameter_count(model_dir: str | Path) -> int | None:
    """Elements of every tensor in a directory's *.safetensors (header only); None when there are none."""
    files = sorted(Path(model_dir).glob("*.safetensors")) if Path(model_dir).is_dir() else []
    if not files:
        return None
    total = 0
    for path in files:
        with reading(path), open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
        total += sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")
    return total


def model_memory_mb(floor_mb: int, params, model_dir: str | Path, full_ft: bool = False) -> int:
    """max(floor_mb, LOAD_FACTOR × parameters × bytes of model.dtype + RUNTIME_MB), in MB; for a
    full fine-tuning job FULL_FT_BYTES per parameter instead."""
    n = parameter_count(model_dir) or parameter_count(params.model.source)
    if n is None:
        return floor_mb
    per_parameter = FULL_FT_BYTES if full_ft else LOAD_FACTOR * DTYPE_BYTES[params.model.dtype]
    return max(floor_mb, math.ceil(per_parameter * n / 2**20) + RUNTIME_MB)


def full_ft_gpu_shortfall(model_dir: str | Path, free_bytes: int, total_bytes: int) -> str | None:
    """Why full fine-tuning of the model in `model_dir` cannot fit on this GPU (one line), or None.

    It needs at least FULL_FT_BYTES per parameter on the device (fp32 weights, gradients, AdamW's
    two moments, and some activations): refused before the model is loaded, rather than running out
    of memory minutes later. A lower bound: a larger batch or sequence needs more."""
    n = parameter_count(model_dir)
    if n is None or FULL_FT_BYTES * n <= free_bytes:
        return None
    return (
        f"{model_dir}: full fine-tuning of {n / 1e9:.2f}B parameters needs at least "
        f"{FULL_FT_BYTES * n / 2**30:.1f} GiB of GPU memory ({FULL_FT_BYTES} bytes per parameter: fp32 weights, "
        f"gradients, AdamW state), this GPU has {free_bytes / 2**30:.1f} of {total_bytes / 2**30:.1f} GiB free; "
        f"on a cluster set cluster.full_ft_gpu_type to a larger GPU"
    )
