"""Random-weight Llama models of real shapes, with an offline tokenizer: throughput needs no download.

Throughput and memory depend on a model's shape, not on its weights (NOTES: random-initialised
models of real configs behave like the real ones), so benchmarks and the GPU suite build one
locally: a byte-level BPE tokenizer trained on a few texts (ChatML template, pad = eos as in
SmolLM2) and a LlamaForCausalLM of the named shape, saved as safetensors. The tests' tiny model is
the `tiny` shape.

    python benchmarks/random_model.py --shape llama-3.2-3b --out models/random-llama-3.2-3b
"""

from __future__ import annotations

import argparse
from pathlib import Path

CHATML = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] "
    "+ '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
# Each shape as LlamaConfig values (both tie the input and output embeddings, see build). The
# first five, in LAYOUT's order: hidden and MLP widths, layers, attention and key-value heads.
# llama-3.2-3b: Llama-3.2-3B's config.json values (the hub is unreachable here).
LAYOUT = ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads")
SHAPES = {
    "tiny": dict(zip(LAYOUT, (64, 128, 3, 4, 2)), max_position_embeddings=256),
    "llama-3.2-3b": dict(
        zip(LAYOUT, (3072, 8192, 28, 24, 8)),
        head_dim=128,
        vocab_size=128256,
        max_position_embeddings=131072,
        rope_theta=500000.0,
        rms_norm_eps=1e-5,
    ),
}


def build_tokenizer(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|im_start|>",
        eos_token="<|im_end|>",
        pad_token="<|im_end|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHATML
    return fast


def build(
    path: Path,
    shape: str,
    texts: list[str],
    vocab_size: int = 320,
    dtype: str = "float32",
    seed: int = 1234,
    device: str | None = None,
    **config,
) -> Path:
    """Tokenizer + random LlamaForCausalLM of `shape` (config keys overridden by `config`) saved in
    `path` (safetensors); returns path."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(texts, vocab_size)
    config = LlamaConfig(
        **({"vocab_size": len(tokenizer), "tie_word_embeddings": True} | SHAPES[shape] | config),
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(seed)
    device = device or ("cuda" if torch.cuda.is_available() and shape != "tiny" else "cpu")
    with torch.device(device):  # a 3B model initialises in seconds on a GPU, minutes on a CPU
        model = LlamaForCausalLM(config).to(getattr(torch, dtype))
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return Path(path)


def raw_texts(raw_file: Path, limit: int = 2000) -> list[str]:
    from locus.training.records import read_records

    return [r["instruction"] + " " + r["response"] for r in read_records(raw_file)[:limit]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--texts", default="data/raw/math_linguistic.jsonl", help="records the tokenizer is trained on")
    ap.add_argument("--vocab-size", type=int, default=4096)
    ap.add_argument("--dtype", default="bfloat16")
    args = ap.parse_args()
    build(Path(args.out), args.shape, raw_texts(Path(args.texts)), args.vocab_size, args.dtype)
    print(f"random {args.shape} -> {args.out}")


if __name__ == "__main__":
    main()
