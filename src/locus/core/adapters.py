"""Reading PEFT adapter directories (adapter_config.json + adapter_model.safetensors): LoRA, DoRA,
IA³ and prefix tuning (`adapter_kind`).

Works for adapters saved by any PEFT-based trainer with `save_pretrained` (Locus's own, TRL's
SFTTrainer, …). What is analysed, what is skipped and what is refused:

- analysed: `…layers.{L}.{block}.{module}.lora_A.weight` / `.lora_B.weight` pairs, any storage
  dtype (fp32/fp16/bf16 are read through torch and widened to float32, exactly); `r`/`lora_alpha`,
  rsLoRA, `rank_pattern`/`alpha_pattern` (PEFT's `get_pattern_key`), `target_modules` as a list or
  a regex string and `layers_to_transform` need nothing special: the saved tensors say what was
  adapted, the config only gives each module's (r, α).
- skipped, with a reason (`adapter_tensors`): LoRA on embeddings (`lora_embedding_A/B`), LoRA
  outside the transformer layers (e.g. `lm_head`), and fully trained tensors that are not a
  low-rank update (`modules_to_save` copies, saved embedding layers, trained biases, trainable tokens).
- refused (`read_adapter_config`): other PEFT types (LoKr, LoHa, prompt tuning, …), fan_in_fan_out
  bases and LoRA variants whose update Locus does not compute — QA-LoRA, BD-LoRA, Arrow, VeLoRA,
  MonteCLoRA, KaSA, a LoRA bias, `layer_replication`, `target_parameters`, Megatron layers.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from locus.core.keys import ATTENTION_BLOCKS, adapter_module_path, parse_key  # noqa: F401 (re-export)
from locus.io import reading

ADAPTER_FILE = "adapter_model.safetensors"
# adapter_config.json keys that switch PEFT's LoRA layer to an update other than ΔW = s·B·A
# (peft 0.21 tuners/lora/layer.py `lora_variants`, and config options that change the layout).
VARIANTS = {
    "use_qalora": "QA-LoRA (lora_A acts on pooled inputs)",
    "use_bdlora": "BD-LoRA (block-diagonal factors)",
    "arrow_config": "Arrow (routing over several adapters)",
    "velora_config": "VeLoRA",
    "monteclora_config": "MonteCLoRA",
    "kasa_config": "KaSA",
    "lora_bias": "a LoRA bias on lora_B (ΔW plus a trained bias)",
    "layer_replication": "layer_replication (layers of the base are duplicated)",
    "target_parameters": "target_parameters (LoRA on raw nn.Parameters, e.g. MoE experts)",
    "megatron_config": "Megatron parallel layers",
}
# init_lora_weights values under which lora_B starts at exactly 0, so the initial ΔW is 0
# (peft LoraConfig docs: True and "gaussian" zero B; EVA sets A from activations and zeroes B).
ZERO_B_INITS = (True, "gaussian", "eva")


# ---------------------------------------------------------------- scaling (adapter_config.json)


def _pattern_value(pattern: dict, module_path: str, default):
    """PEFT's get_pattern_key: the first key that matches the module path as a regex suffix."""
    for key, value in pattern.items():
        if re.match(rf"(.*\.)?({key})$", module_path):
            return value
    return default


def module_rank_alpha(config: dict, module_path: str) -> tuple[int, float]:
    """(r, α) of one module, e.g. module_path "model.layers.3.self_attn.q_proj"."""
    r = _pattern_value(config.get("rank_pattern") or {}, module_path, config["r"])
    alpha = _pattern_value(config.get("alpha_pattern") or {}, module_path, config["lora_alpha"])
    return int(r), float(alpha)


def scaling(config: dict, module_path: str) -> float:
    """s = α/r, or α/√r when use_rslora — exactly as PEFT's LoraLayer.update_layer sets `scaling`."""
    r, alpha = module_rank_alpha(config, module_path)
    return alpha / (r**0.5 if config.get("use_rslora") else r)


# ---------------------------------------------------------------- config and tensors


# PEFT types Locus measures, and the kind each is read as (LoRA with use_dora is "dora").
PEFT_TYPES = {"LORA": "lora", "IA3": "ia3", "PREFIX_TUNING": "prefix"}
# The per-module tensors each weight-space kind saves (locus.core.keys matrix names).
KIND_TENSORS = {"lora": {"A", "B"}, "dora": {"A", "B", "magnitude"}, "ia3": {"ia3"}}


def adapter_kind(config: dict) -> str:
    """'lora', 'dora', 'ia3' or 'prefix' of a config read_adapter_config accepted."""
    kind = PEFT_TYPES[config.get("peft_type", "LORA")]
    return "dora" if kind == "lora" and config.get("use_dora") else kind


def read_adapter_config(directory: str | Path, kinds: tuple[str, ...] = ("lora", "dora", "ia3", "prefix")) -> dict:
    """adapter_config.json of an adapter of one of `kinds` (adapter_kind); anything else is refused
    naming the file and key."""
    path = Path(directory) / "adapter_config.json"
    if not path.exists():
        raise FileNotFoundError(f"{path}: no adapter_config.json here")
    with reading(path):
        config = json.loads(path.read_text())
        if not isinstance(config, dict):
            raise ValueError("not a JSON object")
    peft_type = config.get("peft_type", "LORA")
    if peft_type not in PEFT_TYPES:
        raise ValueError(
            f"{path}: peft_type: {peft_type} adapters are not supported (Locus measures {', '.join(PEFT_TYPES)})"
        )
    for key, what in VARIANTS.items():
        if config.get(key):
            raise ValueError(f"{path}: {key}: {what} is not supported yet (LoRA, DoRA, IA³ and prefix tuning only)")
    if config.get("fan_in_fan_out"):
        raise ValueError(f"{path}: fan_in_fan_out: adapters of Conv1D bases are not supported")
    if peft_type == "PREFIX_TUNING" and config.get("prefix_projection"):
        raise ValueError(f"{path}: prefix_projection: prefixes made by an MLP are not supported (its table only)")
    if (kind := adapter_kind(config)) not in kinds:
        raise ValueError(f"{path}: peft_type: a {kind} adapter where {' or '.join(kinds)} is needed")
    return config


def starts_at_zero(config: dict) -> bool:
    """True when PEFT initialised lora_B to 0 (config key init_lora_weights), i.e. the initial ΔW is 0."""
    return config.get("init_lora_weights", True) in ZERO_B_INITS


def _skip_reason(key: str) -> str | None:
    """Why a tensor that is not a per-layer lora_A/lora_B weight is left out; None: refuse it."""
    if ".lora_embedding_A" in key or ".lora_embedding_B" in key:
        return "LoRA on an embedding layer (not a linear map of a transformer layer)"
    if re.search(r"\.(lora_[AB]\.weight|lora_magnitude_vector|ia3_l)$", key):
        return "an adapter outside the transformer layers (e.g. lm_head)"
    if ".lora_" not in key:
        return "a fully trained tensor (modules_to_save, saved embedding layer, bias or trainable tokens), not a low-rank update"
    return None


def adapter_tensors(directory: str | Path) -> tuple[dict[str, dict], dict[str, str]]:
    """({module path: {layer, block, module, A: key, B: key}} sorted by layer, {skipped key: reason})."""
    from safetensors import safe_open

    path = Path(directory) / ADAPTER_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no adapter weights (safetensors) here")
    with reading(path), safe_open(path, "np") as f:
        keys = list(f.keys())
    modules: dict[str, dict] = {}
    skipped: dict[str, str] = {}
    for key in keys:
        module_path = adapter_module_path(key)
        if module_path is None:
            reason = _skip_reason(key)
            if reason is None:
                raise ValueError(f"{path}: tensor {key!r} is not a per-layer adapter tensor")
            skipped[key] = reason
            continue
        parsed = parse_key(key)
        entry = modules.setdefault(module_path, {k: parsed[k] for k in ("layer", "block", "module")})
        entry[parsed["matrix"]] = key
    for module_path, entry in modules.items():
        held = set(entry) - {"layer", "block", "module"}
        if held not in KIND_TENSORS.values():
            raise ValueError(f"{path}: {module_path} holds {sorted(held)}, not a LoRA, DoRA or IA³ module's tensors")
    if not modules:
        raise ValueError(f"{path}: the adapter holds no adapter tensors of transformer layers")
    return dict(sorted(modules.items(), key=lambda kv: (kv[1]["layer"], kv[0]))), skipped


def module_keys(directory: str | Path) -> dict[str, dict]:
    """{module path: {layer, block, module, A: key, B: key}} of a PEFT adapter, sorted by layer."""
    return adapter_tensors(directory)[0]


def read_matrix(handle, key: str) -> np.ndarray:
    """One tensor of a safetensors file opened with framework "pt", as float32 numpy.

    Through torch because numpy has no bfloat16; fp16 and bf16 values are exact in float32.
    """
    return handle.get_tensor(key).float().numpy()


def load_adapter(directory: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a PEFT adapter directory's safetensors file, as numpy (no torch import)."""
    from safetensors.numpy import load_file

    path = Path(directory) / ADAPTER_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no adapter weights (safetensors) here")
    with reading(path):
        return load_file(path)
