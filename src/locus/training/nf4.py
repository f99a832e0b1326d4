"""NF4 (QLoRA) base weights: the round trip W₀ that training sees, and a CPU fast path for it.

QLoRA stores each frozen base matrix in 4-bit NormalFloat with per-64-value absmax scales
(Dettmers et al. 2023, §3). bitsandbytes' `Linear4bit.forward` dequantizes that matrix to the
compute dtype on *every* call and multiplies in that dtype: y = (x in bf16) @ deq(W)ᵀ, cast back
to x's dtype. The dequantized matrix depends only on the stored codes, so on CPU — where no fused
4-bit kernel exists for training — Locus dequantizes each matrix once and keeps the bf16 result:
`DequantizedLinear` computes exactly what `Linear4bit` computes (tests/unit/test_nf4.py checks the
weights bit for bit and the logits against the bitsandbytes path), without the per-call
dequantization. On CUDA bitsandbytes' kernels are kept (they read 4 bits per weight from memory,
which is the point of QLoRA on a GPU).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def roundtrip(weight: torch.Tensor, compute_dtype: torch.dtype, double_quant: bool) -> torch.Tensor:
    """The NF4-dequantized weight Linear4bit computes with (bitsandbytes Params4bit defaults: blocksize 64)."""
    import bitsandbytes.functional as bnbf

    packed, state = bnbf.quantize_4bit(
        weight.to(compute_dtype).contiguous(), blocksize=64, compress_statistics=double_quant, quant_type="nf4"
    )
    return bnbf.dequantize_4bit(packed, state)


class DequantizedLinear(torch.nn.Linear):
    """A frozen Linear4bit dequantized once: y = F.linear(x in compute dtype, W) cast back to x's dtype.

    The weight is a buffer, not a parameter, so `prepare_model_for_kbit_training` (which upcasts
    every bf16/fp16 parameter to fp32) leaves it in the compute dtype, as it leaves NF4 codes alone;
    PEFT still sees an `nn.Linear` and wraps it with a plain LoRA layer.
    """

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None):
        torch.nn.Module.__init__(self)
        self.out_features, self.in_features = weight.shape
        self.register_buffer("weight", weight)
        self.register_buffer("bias", None if bias is None else bias.detach().to(weight.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x.to(self.weight.dtype), self.weight, self.bias).to(x.dtype)


def w0_metadata(params) -> dict[str, str]:
    """The settings a W₀ file (`locus quantize-base`) is made for; readers check them against params."""
    q = params.quantization
    return {"method": q.method, "compute_dtype": q.compute_dtype, "double_quant": str(q.double_quant).lower()}


def stored_names(w0_file, params) -> set[str]:
    """The weight names a W₀ file holds, after checking it was made for params' quantization
    settings (a file made for others is refused, naming it)."""
    from safetensors import safe_open

    from locus.io import reading

    with reading(w0_file), safe_open(w0_file, "pt") as f:
        made_for = {k: v for k, v in (f.metadata() or {}).items() if k != "device"}
        names = set(f.keys())
    if made_for != w0_metadata(params):
        raise ValueError(
            f"{w0_file}: made for quantization {made_for}, params say {w0_metadata(params)}; rerun locus quantize-base"
        )
    return names


def dequantized(layer) -> torch.Tensor:
    """The weight a bitsandbytes Linear4bit multiplies by: its NF4 codes dequantized to the compute dtype."""
    import bitsandbytes.functional as bnbf

    w = layer.weight
    return bnbf.dequantize_4bit(w.data, w.quant_state).to(layer.compute_dtype or torch.bfloat16)


def _replace(model, path: str, weight: torch.Tensor, bias) -> None:
    """Put a DequantizedLinear of `weight` at `path` (e.g. model.layers.0.mlp.up_proj)."""
    parent_name, _, child = path.rpartition(".")
    setattr(model.get_submodule(parent_name) if parent_name else model, child, DequantizedLinear(weight, bias))


def install_stored(model, w0_file, params) -> int:
    """Replace every linear layer the W₀ file names by a DequantizedLinear of the stored weight: the
    model dequantize_once gives, without quantizing it again in this process. Returns the count."""
    from safetensors import safe_open

    from locus.io import reading

    names = stored_names(w0_file, params)
    with reading(w0_file), safe_open(w0_file, "pt") as f:
        for name in sorted(names):
            path = name.removesuffix(".weight")
            _replace(model, path, f.get_tensor(name), model.get_submodule(path).bias)
    return len(names)


def dequantize_once(model) -> int:
    """Replace every bitsandbytes Linear4bit of a CPU model by its DequantizedLinear; returns the count."""
    layers = [(name, module) for name, module in model.named_modules() if type(module).__name__ == "Linear4bit"]
    for name, module in layers:
        _replace(model, name, dequantized(module), module.bias)
    return len(layers)
