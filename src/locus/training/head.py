"""The vocabulary head, run only where a response token is predicted.

A causal LM computes logits = lm_head(h) at every position, and the training loss then discards
all but the positions that predict a response token (prompt and padding are IGNORE_INDEX,
locus.training.sft_data). With SmolLM2's 49k-token vocabulary the head is ≈ 20% of a CPU training
step; ≈ 40% of the positions (prompt, padding) never reach the loss. So for architectures whose
logits are exactly lm_head(last hidden state) (LINEAR_HEAD), Locus runs the decoder, selects the
positions t − 1 whose next token t is a response token, and runs the head and the cross-entropy on
those rows only:

    loss = Σ_{t ∈ R} −log softmax(lm_head(h_{t−1}))[x_t] / N

N is the number of response tokens of the whole accumulated batch when the Trainer passes it
(`num_items_in_batch`, so gradient accumulation weighs every token the same), else of this batch:
the same value transformers' ForCausalLMLoss computes from the full logits, up to float summation
order (tests/unit/test_head.py). Any other architecture (logit soft-capping or scaling: Gemma 2/3,
Granite, Cohere, …) keeps the model's own loss. Used by the training loop (both arms; the
Trainer's eval loss too) and by held-out scoring (locus.analysis.evaluation).
"""

from __future__ import annotations

import torch
from transformers import Trainer

from locus.training.sft_data import IGNORE_INDEX

# Causal LMs whose forward computes logits = lm_head(decoder(x).last_hidden_state) and nothing more
# (transformers 5 modeling code); any other keeps its own logits and loss.
LINEAR_HEAD = {"llama", "mistral", "qwen2", "qwen3", "phi3", "olmo2"}


def _base(model):
    return model.get_base_model() if hasattr(model, "get_base_model") else model  # PEFT or plain


def has_linear_head(model) -> bool:
    """True where the head can run apart from the decoder: a LINEAR_HEAD architecture whose adapter
    lives inside the decoder (not prompt learning such as prefix tuning, which PEFT feeds in through
    the PeftModel's own forward as past keys and values)."""
    prompt_learning = getattr(getattr(model, "active_peft_config", None), "is_prompt_learning", False)
    return not prompt_learning and getattr(_base(model).config, "model_type", None) in LINEAR_HEAD


def head_inputs(model, batch: dict) -> tuple[torch.Tensor, object]:
    """(per-position inputs of the head, the head): the decoder's last hidden states and the LM
    head for a LINEAR_HEAD model, else the model's own logits and the identity. No KV cache.
    The LoRA layers live inside the decoder, so a PeftModel's adapter takes part."""
    inputs = {k: v for k, v in batch.items() if k != "labels"} | {"use_cache": False}
    base = _base(model)
    if not has_linear_head(model):
        return model(**inputs).logits, lambda x: x
    return base.get_decoder()(**inputs).last_hidden_state, base.get_output_embeddings()


def response_positions(hidden: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(the head inputs at positions t − 1 whose token t is a response token, those tokens)."""
    target = labels[:, 1:]
    mask = target != IGNORE_INDEX
    return hidden[:, :-1][mask], target[mask]


def response_loss(model, batch: dict, num_items_in_batch=None) -> torch.Tensor:
    """Mean cross-entropy of the response tokens (see the module doc), for a LINEAR_HEAD model."""
    hidden, head = head_inputs(model, batch)
    rows, target = response_positions(hidden, batch["labels"])
    nll = torch.nn.functional.cross_entropy(head(rows).float(), target, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else target.numel()
    if torch.is_tensor(count):
        count = count.to(nll.device)
    return nll / count


class ResponseHeadTrainer(Trainer):
    """transformers' Trainer whose loss runs the vocabulary head on response positions only
    (response_loss) for LINEAR_HEAD models; the stock loss otherwise."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if not has_linear_head(model) or self.label_smoother is not None or self.compute_loss_func is not None:
            return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        # As the stock loss: the model sees num_items_in_batch only if its forward takes loss kwargs
        # (else the Trainer averages micro-batch means itself).
        count = num_items_in_batch if self.model_accepts_loss_kwargs else None
        # accelerate autocasts the model's own forward (training.mixed_precision), which this loss
        # bypasses by calling the decoder and the head itself: the same autocast wraps it here.
        with self.accelerator.autocast():
            loss = response_loss(model, inputs, count)
        if self.args.average_tokens_across_devices and count is not None:
            # As Trainer.compute_loss: num_items_in_batch counts every process's tokens.
            loss = loss * (self.accelerator.num_processes // self.get_tp_size())
        return (loss, {"loss": loss}) if return_outputs else loss
