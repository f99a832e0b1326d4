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

from locus.core.adapters import ADAPTER_FILE, adapter_kind, adapter_tensors, read_adapter_config, read_matrix, scaling
from locus.core.effective import METRICS, iter_updates, module_rank_alpha, update_metrics
from locus.core.methods import dense_update, dora_weight, ia3_weight, prefix_blocks
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
    """effective.parquet of any adapter Locus reads: LoRA's ΔW through its factors (never dense),
    DoRA's and IA³'s as the difference of two merges (locus.core.methods), prefix tuning's ΔP per layer."""
    kind = adapter_kind(read_adapter_config(final))
    if kind in ("dora", "ia3"):
        return _table(merged_rows(final, model_dir, params, init, w0_file))
    if kind == "prefix":
        return _table(prefix_rows(final, model_dir, init))
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
    return _table(rows)


def _table(rows: list[dict]) -> pd.DataFrame:
    table = pd.DataFrame(rows)[COLUMNS].sort_values(["layer", "module"], kind="stable").reset_index(drop=True)
    return table.astype({"layer": "int32", "rank": "int32", "numerical_rank": "int32"})


def merged_weight(kind: str, config: dict, module_path: str, w0: np.ndarray, handle, entry: dict | None) -> np.ndarray:
    """W' of one module as PEFT merges it (locus.core.methods); entry None: the initial adapter
    PEFT would make on this W₀ (W' = W₀)."""
    if entry is None:
        return np.asarray(w0, np.float64)
    if kind == "ia3":
        return ia3_weight(w0, read_matrix(handle, entry["ia3"]))
    a, b = read_matrix(handle, entry["A"]), read_matrix(handle, entry["B"])
    return dora_weight(w0, a, b, scaling(config, module_path), read_matrix(handle, entry["magnitude"]))


def merged_rows(final, model_dir, params, init=None, w0_file=None) -> list[dict]:
    """One row per module of a DoRA or IA³ adapter: ΔW = W'(final) − W'(init), dense, exact SVD."""
    from safetensors import safe_open

    config = read_adapter_config(final, kinds=("dora", "ia3"))
    kind = adapter_kind(config)
    modules, _ = adapter_tensors(final)
    initial = adapter_tensors(init)[0] if init is not None else None
    if initial is not None and set(initial) != set(modules):
        raise ValueError(f"{init} and {final} adapt different modules")
    rows = []
    with ExitStack() as stack, BaseWeights(model_dir, params, w0_file) as base:
        ff = stack.enter_context(safe_open(Path(final) / ADAPTER_FILE, "pt"))
        fi = stack.enter_context(safe_open(Path(init) / ADAPTER_FILE, "pt")) if init is not None else None
        for module_path, entry in modules.items():
            w0 = base[module_path + ".weight"]
            before = merged_weight(kind, config, module_path, w0, fi, initial[module_path] if initial else None)
            upd = dense_update(merged_weight(kind, config, module_path, w0, ff, entry) - before)
            r = module_rank_alpha(config, module_path)[0] if kind == "dora" else min(w0.shape)
            s = scaling(config, module_path) if kind == "dora" else 1.0
            info = {k: entry[k] for k in ("layer", "block", "module")} | {"rank": r, "scaling": s}
            rows.append(info | update_metrics(upd, w0, r=r))
    return rows


def prefix_rows(final, model_dir, init=None) -> list[dict]:
    """One row per (layer, prefix_key | prefix_value) of a prefix-tuning adapter: the metrics of
    ΔP = P(final) − P(init) (T × kv_dim), with w0_fro = ‖P(init)‖_F, so rel_fro is the change
    relative to the prefix it started from (NaN from PEFT's zero start) — not comparable with a
    weight's ‖ΔW‖_F/‖W₀‖_F; fro, ‖ΔP‖_F, is the prefix's own scale."""
    from safetensors.numpy import load_file

    read_adapter_config(final, kinds=("prefix",))
    config_path = Path(model_dir) / "config.json"
    with reading(config_path):
        n_layers = int(json.loads(config_path.read_text())["num_hidden_layers"])

    def table(directory) -> np.ndarray:
        path = Path(directory) / ADAPTER_FILE
        with reading(path):
            tensors = load_file(path)
        if "prompt_embeddings" not in tensors:
            raise ValueError(f"{path}: no prompt_embeddings tensor (not a prefix-tuning adapter)")
        return tensors["prompt_embeddings"].astype(np.float64)

    after = prefix_blocks(table(final), n_layers)
    before = prefix_blocks(table(init), n_layers) if init is not None else None
    if before is None:
        raise ValueError(f"{final}: prefix tuning starts from a random prefix; pass the initial adapter (--init)")
    rows = []
    for (layer, module), block in after.items():
        delta = block - before[(layer, module)]
        metrics = update_metrics(dense_update(delta), None)
        p0 = float(np.linalg.norm(before[(layer, module)]))
        rows.append(
            {"layer": layer, "block": "attention", "module": module, "rank": min(delta.shape), "scaling": 1.0}
            | metrics
            | {"w0_fro": p0, "rel_fro": metrics["fro"] / p0 if p0 > 0 else np.nan, "amplification": np.nan}
        )
    return rows
