"""Stage: the effective update ΔW = s·B·A of every adapted module of one cell -> effective.parquet.

Reads the final PEFT adapter and the base weights W₀ it was trained against (NF4-dequantized
exactly as bitsandbytes' Linear4bit holds them when params quantize to NF4), and writes one row
per (layer, module) with the metrics in locus.effective. No dense ΔW is formed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import safe_open
from safetensors.numpy import load_file

from locus import io
from locus.effective import adapter_updates, read_adapter_config, scaling, update_metrics
from locus.modeling import DTYPES
from locus.stats import ATTENTION_BLOCKS


def weight_files(model_dir: Path) -> dict[str, Path]:
    """{tensor name: safetensors file} for a single-file or sharded checkpoint."""
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        return {k: model_dir / f for k, f in json.loads(index.read_text())["weight_map"].items()}
    single = model_dir / "model.safetensors"
    if not single.exists():
        raise FileNotFoundError(f"{model_dir}: no model.safetensors or model.safetensors.index.json")
    with safe_open(single, "pt") as f:
        return {k: single for k in f.keys()}


def as_trained(weight: torch.Tensor, params) -> torch.Tensor:
    """W₀ as the training forward pass saw it: cast to the compute dtype and NF4 round-tripped."""
    q = params.quantization
    if q.method != "nf4":
        return weight.to(DTYPES[params.model.dtype]).double()
    import bitsandbytes.functional as bnbf

    packed, state = bnbf.quantize_4bit(weight.to(DTYPES[q.compute_dtype]).contiguous(), blocksize=64,
                                       compress_statistics=q.double_quant, quant_type="nf4")
    return bnbf.dequantize_4bit(packed, state).double()


def base_weights(model_dir: str | Path, names: list[str], params) -> dict[str, np.ndarray]:
    files = weight_files(Path(model_dir))
    missing = [n for n in names if n not in files]
    if missing:
        raise ValueError(f"{model_dir}: base model has no weights {missing[:3]} for this adapter")
    out = {}
    for name in names:
        with safe_open(files[name], "pt") as f:
            out[name] = as_trained(f.get_tensor(name), params).numpy()
    return out


def effective_table(adapter_dir: str | Path, model_dir: str | Path, params) -> pd.DataFrame:
    config = read_adapter_config(adapter_dir)
    tensors = load_file(Path(adapter_dir) / "adapter_model.safetensors")
    updates = adapter_updates(tensors, config)
    w0 = base_weights(model_dir, list(updates), params)
    rows = []
    for name, (info, upd) in updates.items():
        block = "attention" if info["block"] in ATTENTION_BLOCKS else "mlp"
        metrics = update_metrics(upd, w0[name])
        rows.append({"layer": info["layer"], "block": block, "module": info["module"],
                     "scaling": scaling(config, name.removesuffix(".weight")),
                     "w0_fro": float(np.linalg.norm(w0[name])), **metrics})
    return pd.DataFrame(rows).sort_values(["layer", "module"], kind="stable").reset_index(drop=True)


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="prepared base model directory")
    parser.add_argument("--adapter", required=True, help="final adapter directory")
    parser.add_argument("--out", required=True, help="effective.parquet to write")


def run(args, params) -> None:
    table = effective_table(args.adapter, args.model, params)
    with io.atomic_path(args.out) as tmp:
        table.to_parquet(tmp, index=False)
    top = table.loc[table.rel_fro.idxmax()]
    print(f"{len(table)} modules; largest relative change {top.rel_fro:.2e} at layer {top.layer} {top.module} -> {args.out}")
