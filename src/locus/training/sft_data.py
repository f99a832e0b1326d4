"""Turning instruction-response records into supervised fine-tuning examples.

The instruction is rendered with the model's chat template (a plain "### Instruction / ###
Response" format when the tokenizer has none) and its tokens are masked out of the loss
(label -100), so only response tokens are learned. Because SmolLM2's pad token equals its eos
token, the mask comes from the prompt length, never from the pad id.
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = -100
PLAIN_TEMPLATE = "### Instruction:\n{instruction}\n\n### Response:\n"


@dataclass
class Encoded:
    examples: list[dict]
    n_truncated: int
    n_dropped: int


def render(tokenizer, instruction: str, response: str) -> tuple[str, str]:
    """(prompt text, full text); the prompt is a prefix of the full text."""
    if tokenizer.chat_template:
        user = [{"role": "user", "content": instruction}]
        prompt = tokenizer.apply_chat_template(user, tokenize=False, add_generation_prompt=True)
        full = tokenizer.apply_chat_template(user + [{"role": "assistant", "content": response}], tokenize=False)
    else:
        prompt = PLAIN_TEMPLATE.format(instruction=instruction)
        full = prompt + response + (tokenizer.eos_token or "")
    if not full.startswith(prompt):
        raise ValueError("the chat template does not render the prompt as a prefix of the conversation")
    return prompt, full


def encode(tokenizer, instruction: str, response: str) -> dict:
    prompt, full = render(tokenizer, instruction, response)
    # Chat templates already contain their special tokens; the plain format needs bos added.
    special = not tokenizer.chat_template
    prompt_ids = tokenizer(prompt, add_special_tokens=special)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=special)["input_ids"]
    if full_ids[: len(prompt_ids)] != prompt_ids:
        raise ValueError(f"prompt tokens are not a prefix of the conversation tokens for {instruction[:60]!r}")
    labels = [IGNORE_INDEX] * len(prompt_ids) + full_ids[len(prompt_ids) :]
    return {"input_ids": full_ids, "attention_mask": [1] * len(full_ids), "labels": labels}


def encode_all(
    tokenizer, records: list[dict], max_length: int, overlength: str = "truncate", limit: int | None = None
) -> Encoded:
    """Encode records in order, applying the overlength policy; an example with no response token
    left is dropped. With `limit`, stop once that many examples are kept: a dropped example is
    replaced by the next record, so every domain can be given the same number of examples."""
    examples, truncated, dropped = [], 0, 0
    for r in records:
        if limit is not None and len(examples) == limit:
            break
        ex = encode(tokenizer, r["instruction"], r["response"])
        if len(ex["input_ids"]) > max_length:
            if overlength == "drop":
                dropped += 1
                continue
            ex = {k: v[:max_length] for k, v in ex.items()}
            truncated += 1
        if all(label == IGNORE_INDEX for label in ex["labels"]):
            dropped += 1
            continue
        examples.append(ex)
    return Encoded(examples, truncated, dropped)
