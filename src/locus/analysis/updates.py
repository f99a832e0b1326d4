"""A trained adapter measured against the base weights W₀ it was trained on (effective.parquet).

One row per (layer, block, module): rank, scaling, numerical_rank, w0_fro and the metrics of
locus.core.effective (fro, rel_fro, spectral, stable_rank, effective_rank, amplification). No
dense ΔW is formed. W₀ is the weight the training forward pass used: for `quantization.method: nf4`
the weight Linear4bit holds and dequantizes in its forward — read from the file `locus
quantize-base` made once on the training device, or (adapters trained elsewhere) computed here as
bitsandbytes' quantize_4bit(blocksize=64, compress_statistics=double_quant) then dequantize_4bit
(tests/unit/test_effective.py checks both against a loaded model); otherwise the weight in
`model.dtype`. Weights are read one at a time from model.safetensors or from the
shards named by model.safetensors.index.json, so memory stays at one matrix.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from locus.core.effective import METRICS, iter_updates, update_metrics
from locus.io import reading
from locus.training import nf4
from locus.training.modeling import DTYPES

COLUMNS = ["layer", "block", "module", "rank", "scaling", "numerical_rank", "w0_fro", *METRICS]


def weight_files(model_dir: str | Path) -> dict[str, Path]:
    """{tensor name: safetensors file} for a single-file or sharded (index json) checkpoint."""
    from safetensors import safe_open

    model_dir = Path(model_dir)
    index = model_dir / "model.safetensors.index.json"
    if index.exists():
        return {k: model_dir / f for k, f in json.loads(index.read_text())["weight_map"].items()}
    single = model_dir / "model.safetensors"
    if not single.exists():
        raise FileNotFoundError(f"{model_dir}: no model.safetensors or model.safetensors.index.json")
    with reading(single), safe_open(single, "pt") as f:
        return {k: single for k in f.keys()}


def as_trained(weight: torch.Tensor, params) -> np.ndarray:
    """W₀ as the training forward pass saw it, as float32 (exact for bf16/fp16/fp32 values) numpy."""
    q = params.quantization
    if q.method == "nf4":
        w = nf4.roundtrip(weight, DTYPES[q.compute_dtype], q.double_quant)
    else:
        w = weight.to(DTYPES[params.model.dtype])
    return w.float().numpy()


class BaseWeights:
    """Lazy reader of base weights W₀ by name, one matrix at a time, files opened once each.

    `w0_file` (written by `locus quantize-base`): for NF4, W₀ is read from it — quantized once, on
    the training device. Without it, NF4's W₀ is computed here by a CPU round trip (adapters
    trained elsewhere, `locus external`); unquantized W₀ is always the model's own weight.
    """

    def __init__(self, model_dir: str | Path, params, w0_file: str | Path | None = None):
        self.model_dir, self.params, self.files = Path(model_dir), params, weight_files(model_dir)
        self._stack, self._handles = ExitStack(), {}
        self.stored = None
        if w0_file is not None and params.quantization.method == "nf4":
            self.stored = Path(w0_file)
            self.stored_names = nf4.stored_names(self.stored, params)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._stack.close()

    def _tensor(self, path: Path, name: str) -> torch.Tensor:
        from safetensors import safe_open

        with reading(path):
            if path not in self._handles:
                self._handles[path] = self._stack.enter_context(safe_open(path, "pt"))
            return self._handles[path].get_tensor(name)

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self.files:
            raise ValueError(f"{self.model_dir}: base model has no weight {name!r} for this adapter")
        if self.stored is not None:
            if name in self.stored_names:
                return self._tensor(self.stored, name).float().numpy()
            # A layer bitsandbytes left unquantized (e.g. lm_head) computes with its weight as
            # loaded for NF4 training: in the compute dtype.
            compute = DTYPES[self.params.quantization.compute_dtype]
            return self._tensor(self.files[name], name).to(compute).float().numpy()
        return as_trained(self._tensor(self.files[name], name), self.params)


def plain_weights(model_dir: str | Path, params) -> BaseWeights:
    """W₀ as an unquantized model holds it (the file's weight in model.dtype), whatever
    quantization.method says: for full fine-tuning, which never quantizes."""
    return BaseWeights(model_dir, params.with_quantization("none"))


def effective_table(
    final: str | Path, model_dir: str | Path, params, init: str | Path | None = None, w0_file: str | Path | None = None
) -> pd.DataFrame:
    rows, nonzero_init = [], []
    with BaseWeights(model_dir, params, w0_file) as base:
        for module_path, info, upd in iter_updates(final, init):
            if not info.pop("init_zero"):
                nonzero_init.append(module_path)
            w0 = base[module_path + ".weight"]
            rows.append(info | update_metrics(upd, w0, r=info["rank"]))
    if nonzero_init:
        print(
            f"note: the initial adapter's lora_B is non-zero in {len(nonzero_init)} modules "
            f"(e.g. {nonzero_init[0]}); measured ΔW = s·(B_f A_f − B_i A_i)"
        )
    table = pd.DataFrame(rows)[COLUMNS].sort_values(["layer", "module"], kind="stable").reset_index(drop=True)
    return table.astype({"layer": "int32", "rank": "int32", "numerical_rank": "int32"})
