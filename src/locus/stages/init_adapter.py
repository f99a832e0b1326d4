"""Stage: snapshot the LoRA adapter before training (PEFT format, safetensors).

The seed is set immediately before `get_peft_model`, because PEFT draws every `lora_A` from
torch's global RNG (Kaiming-uniform, bound 1/sqrt(in_features)) and sets every `lora_B` to
zero. The initial adapter depends only on the seed, the LoRA config and the module shapes, so we
build it on the unquantized base (cheap, device-free); the train stage loads this exact file.
"""

from __future__ import annotations

from peft import get_peft_model

from locus import io
from locus.modeling import load_base, lora_config, seed_everything


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="prepared base model directory")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="adapter directory to write")


def run(args, params) -> None:
    base = load_base(params, args.model, quantize=False)
    seed_everything(args.seed)
    model = get_peft_model(base, lora_config(params))
    with io.atomic_path(args.out, is_dir=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"initial adapter (seed {args.seed}, {trainable:,} trainable parameters) -> {args.out}")
