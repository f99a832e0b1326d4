"""Representation change: at which layers the fine-tuned model computes something different.

The weight maps (delta, effective) say where the parameters moved; this says where the function
changed — an independent locus. Both models read the cell's eval split, encoded exactly as the
train stage evaluates it; for every decoder layer ℓ the hidden state that each real (non-padding)
token leaves the layer with is collected (tokens × hidden), and compared by linear CKA
(locus.core.representation):

  rep_change        1 − CKA(h_base^ℓ, h_tuned^ℓ)   the two models run end to end: the change
                    accumulated up to ℓ (what earlier layers changed flows into later ones)
  rep_change_local  1 − CKA(h_base^ℓ, f_tuned^ℓ(h_base^(ℓ−1)))   the tuned layer ℓ fed the base's
                    input to ℓ: the change layer ℓ itself makes, comparable with its weight change

The base is the same model with its adapter switched off (PEFT's `disable_adapter`), so the three
passes share one set of weights; all run in eval mode (no dropout) and without gradients.
"""

from __future__ import annotations

import pandas as pd
import torch

from locus.core.representation import linear_cka

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


def _collect(model, recorder: _Recorder, batch: dict, bf16: bool, kept: list[list], replace=None) -> None:
    """One forward pass; append each layer's output at the real (non-padding) tokens to kept[layer]."""
    recorder.replace = replace
    with torch.autocast(next(model.parameters()).device.type, dtype=torch.bfloat16, enabled=bf16):
        model(**batch)
    real = batch["attention_mask"].bool()
    for i, out in enumerate(recorder.outputs):
        kept[i].append(out[real].float().cpu())


@torch.no_grad()
def representation_change(model, tokenizer, dataset, batch_size: int, bf16: bool = False) -> pd.DataFrame:
    """One row per decoder layer: rep_change, rep_change_local (see the module doc) and the number
    of tokens compared. `model` is a PeftModel with its trained adapter; `dataset` an encoded split."""
    from transformers import DataCollatorForSeq2Seq

    from locus.training.sft_data import IGNORE_INDEX

    layers = decoder_layers(model)
    collate = DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=IGNORE_INDEX)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    recorder = _Recorder(layers)
    kept = {kind: [[] for _ in layers] for kind in ("base", "tuned", "local")}
    rows = list(dataset)
    try:
        for start in range(0, len(rows), batch_size):
            batch = collate(
                [{k: r[k] for k in ("input_ids", "attention_mask")} for r in rows[start : start + batch_size]]
            )
            batch = {k: v.to(device) for k, v in batch.items() if v is not None}

            with model.disable_adapter():
                _collect(model, recorder, batch, bf16, kept["base"])
            base_inputs = list(recorder.inputs)
            _collect(model, recorder, batch, bf16, kept["tuned"])
            _collect(model, recorder, batch, bf16, kept["local"], replace=base_inputs)
    finally:
        recorder.remove()
        model.train(was_training)
    table = []
    for i in range(len(layers)):
        base, tuned, local = (torch.cat(kept[k][i]) for k in ("base", "tuned", "local"))
        table.append(
            {
                "layer": i,
                "rep_change": 1.0 - linear_cka(base, tuned),
                "rep_change_local": 1.0 - linear_cka(base, local),
                "tokens": base.shape[0],
            }
        )
    return pd.DataFrame(table, columns=COLUMNS).astype({"layer": "int32", "tokens": "int64"})
