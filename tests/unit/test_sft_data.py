from locus.training.modeling import load_tokenizer
from locus.training.sft_data import IGNORE_INDEX, PLAIN_TEMPLATE, encode, encode_all, render


def test_prompt_tokens_are_masked(tiny_model):
    tok = load_tokenizer(tiny_model)
    ex = encode(tok, "What is 2 plus 3?", "2 + 3 = 5. Answer: 5")
    prompt, full = render(tok, "What is 2 plus 3?", "2 + 3 = 5. Answer: 5")
    n_prompt = len(tok(prompt, add_special_tokens=False)["input_ids"])
    assert ex["labels"][:n_prompt] == [IGNORE_INDEX] * n_prompt
    assert ex["labels"][n_prompt:] == ex["input_ids"][n_prompt:]
    # Only the assistant turn is learned, and it ends with the end-of-turn token.
    learned = tok.decode(ex["labels"][n_prompt:])
    assert learned.startswith("2 + 3 = 5. Answer: 5<|im_end|>")
    assert "What is" not in learned


def test_plain_format_without_chat_template(tiny_model):
    tok = load_tokenizer(tiny_model)
    tok.chat_template = None
    prompt, full = render(tok, "Q?", "A.")
    assert prompt == PLAIN_TEMPLATE.format(instruction="Q?") and full.endswith("A.<|im_end|>")


def test_overlength_policies(tiny_model):
    tok = load_tokenizer(tiny_model)
    recs = [{"instruction": "short?", "response": "ok"}, {"instruction": "long " * 40, "response": "x " * 40}]
    longest = max(len(encode(tok, r["instruction"], r["response"])["input_ids"]) for r in recs)
    cut = encode_all(tok, recs, max_length=longest - 5, overlength="truncate")
    # The long example's prompt alone exceeds the cut, so no response token is left: dropped.
    assert cut.n_truncated == 1 and len(cut.examples) + cut.n_dropped == 2
    assert all(len(e["input_ids"]) <= longest - 5 for e in cut.examples)
    dropped = encode_all(tok, recs, max_length=longest - 5, overlength="drop")
    assert dropped.n_dropped == 1 and len(dropped.examples) == 1
