"""Loading the base model, its tokenizer and the LoRA configuration the way params say.

Shared by the adapter-initialisation and training stages so both see the same modules.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from locus.io import check_safetensors, reading
from locus.params import Params
from locus.params.sections import IA3Params, PrefixParams

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def check_model_dir(path: str | Path, files: tuple[str, ...], weights: bool = False) -> None:
    """The files of a model directory that transformers is about to read, opened first (JSON
    parsed; with `weights`, every safetensors header read), so a missing, empty, truncated or
    foreign one is named in one line instead of surfacing as a library traceback. Each loader
    checks only what it reads: the tokenizer's JSON, or the config and the weights."""
    import json

    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no model directory here")
    if not (path / "config.json").exists():
        raise FileNotFoundError(f"{path / 'config.json'}: no such file (not a prepared model directory)")
    for name in ("config.json", *files):
        if (path / name).exists():
            with reading(path / name):
                if not isinstance(json.loads((path / name).read_text()), dict):
                    raise ValueError("not a JSON object")
    for found in sorted(path.glob("*.safetensors")) if weights else []:
        check_safetensors(found)


def load_tokenizer(path: str | Path):
    from transformers import AutoTokenizer

    check_model_dir(path, ("tokenizer.json", "tokenizer_config.json"))
    if not (Path(path) / "tokenizer.json").exists() and not (Path(path) / "tokenizer_config.json").exists():
        raise FileNotFoundError(f"{Path(path) / 'tokenizer.json'}: no such file (the model directory has no tokenizer)")
    with reading(Path(path) / "tokenizer.json"):
        tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_base(params: Params, path: str | Path, *, quantize: bool = True, cpu: bool = False, w0_file=None):
    """The base causal LM from a prepared directory, on the job's device (model_device(); `cpu`:
    on the CPU whatever is there); NF4-quantized when params (and `quantize`) say so.

    w0_file (`locus quantize-base`): where NF4 runs dequantized once (CPU), the base is loaded in
    the compute dtype and its linear layers take the stored W₀ — the same model, without importing
    bitsandbytes' quantization path or quantizing again in this process. Only safetensors are
    accepted and remote code is never run.
    """
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    kwargs = dict(dtype=DTYPES[params.model.dtype], use_safetensors=True, trust_remote_code=False)
    if torch.cuda.is_available() and not cpu:  # straight onto the job's GPU: no CPU copy first
        kwargs["device_map"] = model_device()
    q = params.quantization
    stored = w0_file is not None and nf4_kernel(params, quantize) == "dequantize_once"
    if stored:
        kwargs.update(dtype=DTYPES[q.compute_dtype])  # what the NF4 load keeps unquantized is in it too
    elif quantize and q.method == "nf4":
        require_bitsandbytes()
        compute = DTYPES[q.compute_dtype]
        kwargs.update(
            dtype=compute,
            device_map="cpu" if cpu else model_device(),
            quantization_config=BitsAndBytesConfig(
                load_in_4bit=True,
                bnb_4bit_quant_type="nf4",
                bnb_4bit_compute_dtype=compute,
                bnb_4bit_use_double_quant=q.double_quant,
            ),
        )
    check_model_dir(path, ("model.safetensors.index.json",), weights=True)
    if not list(Path(path).glob("*.safetensors")):
        raise FileNotFoundError(f"{Path(path) / 'model.safetensors'}: no such file (safetensors weights only)")
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if stored:
        from locus.training.nf4 import install_stored

        install_stored(model, w0_file, params)
    else:
        keep_cpu_nf4_differentiable(model)
        if nf4_kernel(params, quantize) == "dequantize_once":
            from locus.training.nf4 import dequantize_once

            dequantize_once(model)
    check_target_modules(model, params)
    return model


def model_device() -> str:
    """Where a stage's model lives: the process's one GPU (cuda:LOCAL_RANK under torchrun, else
    cuda:0 — locus.cli pins CUDA_VISIBLE_DEVICES to one GPU per job), or cpu."""
    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"


def nf4_kernel(params: Params, quantize: bool = True) -> str:
    """How the frozen NF4 base runs here: bitsandbytes' kernels (CUDA, or CPU on request), the
    weights dequantized once on CPU (locus.training.nf4, the default there), or "none" (not quantized)."""
    if not quantize or params.quantization.method != "nf4":
        return "none"
    if torch.cuda.is_available() or params.quantization.cpu_kernel == "bitsandbytes":
        return "bitsandbytes"
    return "dequantize_once"


def use_bf16(params: Params) -> bool:
    """Whether training and evaluation run under bf16 autocast (training.mixed_precision).

    auto: on CUDA with bf16 support. Not on CPU: measured there (docs/performance.md) autocast
    costs more in casts than its bf16 matmuls save at LoRA's batch sizes, and the frozen NF4 base
    already multiplies in bf16 (its compute dtype) either way.
    """
    mode = params.training.mixed_precision
    if mode != "auto":
        return mode == "bf16"
    return torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def require_bitsandbytes() -> None:
    """Fail before any work, naming the key, where NF4 (bitsandbytes) cannot run on this machine."""
    try:
        import bitsandbytes  # noqa: F401
    except Exception as e:  # ImportError, or a backend library that fails to load
        raise RuntimeError(
            f"quantization.method: nf4 needs bitsandbytes, which cannot be loaded here ({type(e).__name__}: "
            f"{str(e).splitlines()[0] if str(e) else ''}); install it or set quantization.method: none"
        ) from None


def keep_cpu_nf4_differentiable(model) -> None:
    """Stop bitsandbytes from repacking NF4 weights for CPU inference.

    bitsandbytes 0.50 repacks a Linear4bit's weight for an AVX512-BF16 kernel the first time it
    runs in eval mode on CPU, and never unpacks it; that kernel (gemv_4bit) has no autograd, so a
    later training step backpropagates wrongly through every base layer. Evaluating before
    training (as the train stage does) would silently corrupt the gradients; this flag prevents it.
    """
    for module in model.modules():
        if hasattr(module, "support_avx512bf16_for_cpu"):
            module.support_avx512bf16_for_cpu = False


def linear_module_names(model) -> list[str]:
    """Leaf names of every Linear-like module (the possible LoRA targets), e.g. q_proj, up_proj."""
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) or type(module).__name__ in {"Linear4bit", "Linear8bitLt"}:
            names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def target_modules_key(params: Params) -> tuple[str, list[str]]:
    """(params key, module names) of what the job's method adapts; prefix tuning adapts no module."""
    name, kind = params.method, params.method_kind()
    if kind == "ia3":
        ia3 = params.methods[name].ia3 or IA3Params()
        return f"methods.{name}.ia3.target_modules", list(ia3.target_modules)
    if kind == "prefix":
        return f"methods.{name}", []
    overridden = "target_modules" in (params.methods[name].lora or {})
    return (f"methods.{name}.lora.target_modules" if overridden else "lora.target_modules"), list(
        params.lora.target_modules
    )


def check_target_modules(model, params: Params) -> None:
    key, targets = target_modules_key(params)
    available = linear_module_names(model)
    missing = [t for t in targets if t not in available]
    if missing:
        raise ValueError(f"{key}: {missing} not in the model; available: {', '.join(available)}")


def adapter_config(params: Params, layers: list[int] | None = None):
    """PEFT's config of the job's method (params.method, resolved by Params.for_method): LoraConfig
    (use_dora for DoRA), IA3Config or PrefixTuningConfig, each PEFT's own. `layers` restricts a
    LoRA-family adapter to those layer indices (PEFT's layers_to_transform, used by the
    targeted-layer validation), None = every layer."""
    from peft import IA3Config, LoraConfig, PrefixTuningConfig

    kind = params.method_kind()
    if layers is not None and kind not in ("lora", "dora"):
        raise ValueError(f"method: {params.method} is {kind}; adapting chosen layers needs a LoRA-family method")
    if kind == "ia3":
        ia3 = params.methods[params.method].ia3 or IA3Params()
        return IA3Config(
            target_modules=list(ia3.target_modules),
            feedforward_modules=list(ia3.feedforward_modules),
            task_type="CAUSAL_LM",
        )
    if kind == "prefix":
        prefix = params.methods[params.method].prefix or PrefixParams()
        return PrefixTuningConfig(
            num_virtual_tokens=prefix.num_virtual_tokens,
            init_weights="zero" if prefix.init == "zero" else None,
            task_type="CAUSAL_LM",
        )
    lp = params.lora
    return LoraConfig(
        r=lp.r,
        lora_alpha=lp.alpha,
        lora_dropout=lp.dropout,
        target_modules=list(lp.target_modules),
        layers_to_transform=sorted(layers) if layers is not None else None,
        use_rslora=lp.use_rslora,
        use_dora=lp.use_dora,
        bias="none",
        task_type="CAUSAL_LM",
    )


def seed_everything(seed: int, deterministic: bool = False) -> None:
    """Seed Python, NumPy and torch; call before get_peft_model (lora_A is drawn from torch's RNG)
    and before the first CUDA call. deterministic (training.deterministic): transformers'
    enable_full_determinism — deterministic algorithms only, CUBLAS_WORKSPACE_CONFIG set before
    cuBLAS starts, cuDNN autotuning off — so CUDA reruns are bit-identical too."""
    from transformers import enable_full_determinism, set_seed

    if deterministic:
        enable_full_determinism(seed)
    else:
        set_seed(seed)
