"""Names of per-layer weights, parsed in one place.

A base weight:    model.layers.3.self_attn.q_proj.weight
A LoRA tensor:    base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight   (PEFT's naming)
A DoRA magnitude: base_model.model.model.layers.3.self_attn.q_proj.lora_magnitude_vector
An IA³ vector:    base_model.model.model.layers.3.self_attn.k_proj.ia3_l
All give layer 3, block "attention" (self_attn, attention or attn; anything else is "mlp"),
module "q_proj"; an adapter tensor also gives its matrix: "A", "B", "magnitude" or "ia3".
"""

from __future__ import annotations

import re

ATTENTION_BLOCKS = frozenset({"self_attn", "attention", "attn"})
PEFT_PREFIX = "base_model.model."
KEY = re.compile(
    r"(?:^|\.)layers\.(?P<layer>\d+)\.(?P<block>\w+)\.(?P<module>\w+)"
    r"(?:(?:\.lora_(?P<matrix>[AB]))?\.weight|\.(?P<vector>lora_magnitude_vector|ia3_l))$"
)
VECTORS = {"lora_magnitude_vector": "magnitude", "ia3_l": "ia3"}


def parse_key(key: str) -> dict | None:
    """{layer, block, module, matrix} of a per-layer weight (matrix None for a base weight); None otherwise."""
    m = KEY.search(key)
    if not m:
        return None
    block = "attention" if m["block"] in ATTENTION_BLOCKS else "mlp"
    matrix = m["matrix"] or VECTORS.get(m["vector"])
    return {"layer": int(m["layer"]), "block": block, "module": m["module"], "matrix": matrix}


def lora_key(key: str) -> dict:
    """parse_key of a per-layer adapter tensor (lora_A/lora_B, DoRA magnitude, IA³ vector); ValueError otherwise."""
    parsed = parse_key(key)
    if not parsed or not parsed["matrix"]:
        raise ValueError(f"adapter tensor {key!r} is not a per-layer adapter tensor (lora_A/B, magnitude or ia3_l)")
    return parsed


def weight_key(key: str) -> dict:
    """{layer, block, module} of a per-layer base weight; ValueError for anything else."""
    parsed = parse_key(key)
    if not parsed or parsed["matrix"]:
        raise ValueError(f"weight {key!r} is not a per-layer module weight (…layers.N.block.module.weight)")
    return {k: parsed[k] for k in ("layer", "block", "module")}


def adapter_module_path(key: str) -> str | None:
    """The adapted module's name in the base model (model.layers.3.self_attn.q_proj) of a PEFT
    lora_A/lora_B tensor key; None for any other key."""
    parsed = parse_key(key)
    if not key.startswith(PEFT_PREFIX) or not parsed or not parsed["matrix"]:
        return None
    return key[len(PEFT_PREFIX) :].rsplit(".lora_", 1)[0].removesuffix(".ia3_l")
