"""The CPU fast path for QLoRA: NF4 weights dequantized once compute exactly what bitsandbytes computes."""

import pytest
import torch

from conftest import write_params
from locus.params import load
from locus.training.modeling import adapter_config, load_base, nf4_kernel, seed_everything

pytestmark = pytest.mark.cpu_only("the CPU NF4 fast path (dequantize once) against bitsandbytes on the CPU")


def both_paths(tmp_path, arith_raw, **overrides):
    base = dict(quantization={"method": "nf4", "cpu_kernel": "bitsandbytes"}, **overrides)
    bnb = load(write_params(tmp_path / "bnb.yaml", arith_raw, tmp_path / "res", **base))
    once = load(
        write_params(
            tmp_path / "once.yaml",
            arith_raw,
            tmp_path / "res",
            **(base | {"quantization": {"method": "nf4", "cpu_kernel": "dequantize_once"}}),
        )
    )
    return bnb, once


@pytest.mark.skipif(torch.cuda.is_available(), reason="the dequantize-once path is the CPU path")
def test_dequantized_weights_equal_bitsandbytes_bit_for_bit(tmp_path, tiny_model, arith_raw):
    import bitsandbytes.functional as bnbf

    bnb, once = both_paths(tmp_path, arith_raw)
    assert nf4_kernel(bnb) == "bitsandbytes" and nf4_kernel(once) == "dequantize_once"
    a, b = load_base(bnb, tiny_model), load_base(once, tiny_model)
    quantized = [n for n, m in a.named_modules() if type(m).__name__ == "Linear4bit"]
    assert len(quantized) == 3 * 7  # every Linear of every layer (lm_head stays unquantized)
    for name in quantized:
        held, ours = a.get_submodule(name).weight, b.get_submodule(name)
        assert type(ours).__name__ == "DequantizedLinear" and ours.weight.dtype == torch.bfloat16
        assert torch.equal(ours.weight, bnbf.dequantize_4bit(held.data, held.quant_state))
    # Everything that is not an NF4 matrix is loaded identically.
    assert all(torch.equal(p, dict(b.named_parameters())[n]) for n, p in a.named_parameters() if "proj" not in n)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the dequantize-once path is the CPU path")
def test_logits_and_lora_gradients_match_the_bitsandbytes_path(tmp_path, tiny_model, arith_raw):
    """Prepared and wrapped as the train stage does it: same logits and LoRA gradients, in train mode."""
    from peft import get_peft_model, prepare_model_for_kbit_training

    batch = {"input_ids": torch.arange(3, 60).reshape(1, -1)}
    batch["labels"] = batch["input_ids"]
    results = []
    for params in both_paths(tmp_path, arith_raw, lora={"dropout": 0.0}):
        seed_everything(0)
        model = prepare_model_for_kbit_training(load_base(params, tiny_model), use_gradient_checkpointing=False)
        model = get_peft_model(model, adapter_config(params))
        for p in model.parameters():  # a non-zero B, so gradients reach A and the base path matters
            if p.requires_grad:
                torch.nn.init.normal_(p, std=0.02, generator=torch.Generator().manual_seed(p.numel()))
        model.train()
        out = model(**batch)
        out.loss.backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
        assert all(g.dtype == torch.float32 for g in grads.values())  # LoRA stays fp32 on both paths
        results.append((out.logits.detach(), grads))
    (logits_a, grads_a), (logits_b, grads_b) = results
    assert torch.equal(logits_a, logits_b)
    assert grads_a.keys() == grads_b.keys()
    for name in grads_a:
        torch.testing.assert_close(grads_b[name], grads_a[name], rtol=1e-5, atol=1e-7, msg=name)
