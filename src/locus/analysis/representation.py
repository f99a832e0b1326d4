"""Representation change: at which layers the fine-tuned model computes something different.

The weight maps (delta, effective) say where the parameters moved; this says where the function
changed — an independent locus. Both models read the cell's eval split, encoded exactly as the
train stage evaluates it. For every decoder layer ℓ, with h^ℓ the hidden state a token leaves
layer ℓ with and u^ℓ = h^ℓ − h^(ℓ−1) the layer's own residual update, compared by linear CKA
(locus.core.representation) over the tokens:

  rep_change        1 − CKA(h_base^ℓ, h_tuned^ℓ)   the two models run end to end: the change
                    accumulated up to ℓ (what earlier layers changed flows into later ones)
  rep_change_local  1 − CKA(u_base^ℓ, u_tuned^ℓ) with both layers fed the base's h^(ℓ−1): the change
                    layer ℓ itself makes to what it adds to the residual stream — comparable with
                    its weight change. (Comparing the layer outputs instead would mostly compare the
                    shared residual input with itself: ≈ 0 everywhere.)

Tokens: every real (non-padding) token except each sequence's first. The first position carries
the attention sink's massive activations (Sun et al. 2024, "Massive Activations in Large Language
Models"): in SmolLM2 its hidden state is ≈ 24,000 in norm at layers 11–28 against a median of
≈ 170, so it alone would decide CKA (measured: 1 − CKA ≈ 0 at those layers with it, 1e-3–2e-2
without it).
The base is the same model with its adapter switched off (PEFT's `disable_adapter`), so the three
passes share one set of weights; all run in eval mode (no dropout) and without gradients, through
the decoder stack only (the vocabulary head's logits are not needed).
"""

from __future__ import annotations

import pandas as pd
import torch

from locus.core.representation import cka_distance

COLUMNS = ["layer", "rep_change", "rep_change_local", "tokens"]


def decoder_layers(model) -> torch.nn.ModuleList:
    """The model's stack of decoder layers (the ModuleList named `…layers`, e.g. model.model.layers)."""
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and name.split(".")[-1] == "layers":
            return module
    raise ValueError(f"{type(model).__name__}: no decoder layer list (a ModuleList named 'layers') found")


def _hidden(output) -> torch.Tensor:
    return output[0] if isinstance(output, tuple) else output


class _Recorder:
    """Forward hooks on every decoder layer: record each layer's input and output hidden states, and
    optionally replace a layer's input by a given tensor (the base's input to that layer)."""

    def __init__(self, layers: torch.nn.ModuleList):
        self.inputs: list[torch.Tensor | None] = [None] * len(layers)
        self.outputs: list[torch.Tensor | None] = [None] * len(layers)
        self.replace: list[torch.Tensor] | None = None
        self.handles = []
        for i, layer in enumerate(layers):
            self.handles.append(layer.register_forward_pre_hook(self._pre(i), with_kwargs=True))
            self.handles.append(layer.register_forward_hook(self._post(i)))

    def _pre(self, i):
        def hook(module, args, kwargs):
            if self.replace is not None:
                if args:
                    args = (self.replace[i], *args[1:])
                else:
                    kwargs = kwargs | {"hidden_states": self.replace[i]}
            self.inputs[i] = args[0] if args else kwargs["hidden_states"]
            return args, kwargs

        return hook

    def _post(self, i):
        def hook(module, args, output):
            self.outputs[i] = _hidden(output)

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def _forward(decoder, recorder: _Recorder, batch: dict, bf16: bool, replace=None, prefix=None) -> None:
    """One decoder pass; prefix: a PeftModel whose prefix tuning feeds every layer its trained keys
    and values (PEFT's own forward does the same: a fresh prompt cache, the mask widened by the
    virtual tokens), so the hidden states are those of the real tokens under the prefix."""
    recorder.replace = replace
    if prefix is not None:
        n = len(batch["input_ids"])
        virtual = prefix.active_peft_config.num_virtual_tokens
        ones = batch["attention_mask"].new_ones(n, virtual)
        batch = batch | {
            "past_key_values": prefix.get_prompt(batch_size=n),
            "attention_mask": torch.cat([ones, batch["attention_mask"]], dim=1),
        }
    with torch.autocast(batch["input_ids"].device.type, dtype=torch.bfloat16, enabled=bf16):
        decoder(**batch)


def _take(kept: list[list], per_layer, keep: torch.Tensor) -> None:
    for i, t in enumerate(per_layer):
        kept[i].append(t[keep].float().cpu())


def compared_tokens(attention_mask: torch.Tensor) -> torch.Tensor:
    """The positions compared: real tokens, not the first of each sequence (the attention sink)."""
    keep = attention_mask.bool().clone()
    first = keep.float().argmax(dim=1)  # the first real position (left or right padding)
    keep[torch.arange(len(keep)), first] = False
    return keep


@torch.no_grad()
def representation_change(model, tokenizer, dataset, batch_size: int, bf16: bool = False) -> pd.DataFrame:
    """One row per decoder layer: rep_change, rep_change_local (see the module doc) and the number
    of tokens compared. `model` is a PeftModel with its trained adapter; `dataset` an encoded split."""
    from locus.training.scoring import eval_batches

    decoder = model.get_base_model().get_decoder()  # the LoRA layers live inside it
    prefix = model if model.active_peft_config.is_prompt_learning else None
    layers = decoder_layers(decoder)
    was_training = model.training
    model.eval()
    recorder = _Recorder(layers)
    kept = {kind: [[] for _ in layers] for kind in ("base", "tuned", "base_update", "local_update")}
    device = next(model.parameters()).device
    try:
        for batch in eval_batches(tokenizer, dataset, batch_size, device, keys=("input_ids", "attention_mask")):
            keep = compared_tokens(batch["attention_mask"])
            with model.disable_adapter():
                _forward(decoder, recorder, batch, bf16)
            base_in, base_out = list(recorder.inputs), list(recorder.outputs)
            _take(kept["base"], base_out, keep)
            _take(kept["base_update"], [o - i for o, i in zip(base_out, base_in)], keep)
            _forward(decoder, recorder, batch, bf16, prefix=prefix)
            _take(kept["tuned"], recorder.outputs, keep)
            _forward(decoder, recorder, batch, bf16, replace=base_in, prefix=prefix)
            _take(kept["local_update"], [o - i for o, i in zip(recorder.outputs, base_in)], keep)
    finally:
        recorder.remove()
        model.train(was_training)
    table = []
    for i in range(len(layers)):
        got = {k: torch.cat(v[i]) for k, v in kept.items()}
        table.append(
            {
                "layer": i,
                "rep_change": cka_distance(got["base"], got["tuned"]),
                "rep_change_local": cka_distance(got["base_update"], got["local_update"]),
                "tokens": got["base"].shape[0],
            }
        )
    return pd.DataFrame(table, columns=COLUMNS).astype({"layer": "int32", "tokens": "int64"})
