"""Stage: the base weights W₀ exactly as QLoRA training computes with them, quantized once per model.

    locus quantize-base --model models/base --out models/base-w0.safetensors

With `quantization.method: nf4` the base is loaded as the train stage loads it, on the device
training uses (bitsandbytes' NF4 on the job's GPU; on a CPU, bitsandbytes' CPU quantization), and
every quantized linear weight is dequantized back to the compute dtype and saved: the values
`Linear4bit` multiplies by in every forward pass (locus.training.nf4). The effective and
trajectory stages read W₀ from this file instead of re-quantizing the model on the CPU in every
cell — which cost minutes per cell for a 3B model, and would give the CPU's round trip where a GPU
trained. With `method: none` the file holds no tensor: W₀ is the model's own weight in model.dtype.

The file's metadata records the quantization settings and the device it was made on; readers
check the settings against params (locus.analysis.updates.BaseWeights), so a W₀ file made for other
settings is refused. A layer bitsandbytes leaves unquantized (lm_head) is not in the file.
"""

from __future__ import annotations

from locus import io, options

# Runs the model on the training device: locus.cli gives the job a GPU of its own.
RUNS_ON_GPU = True


def add_arguments(parser) -> None:
    options.add_model(parser)
    parser.add_argument("--out", required=True, help="safetensors file of W₀ as trained")


def quantized_weights(model) -> dict:
    """{parameter name: W₀ in the compute dtype, on the CPU} for every NF4 layer of a loaded base:
    bitsandbytes' dequantization of a Linear4bit, or the weight a DequantizedLinear already holds."""
    from locus.training.nf4 import DequantizedLinear, dequantized

    found = {}
    for name, module in model.named_modules():
        if isinstance(module, DequantizedLinear):
            found[f"{name}.weight"] = module.weight.detach().cpu().contiguous()
        elif type(module).__name__ == "Linear4bit":
            found[f"{name}.weight"] = dequantized(module).detach().cpu().contiguous()
    return found


def run(args, params) -> None:
    from safetensors.torch import save_file

    from locus.training.modeling import load_base, model_device
    from locus.training.nf4 import w0_metadata

    weights = {}
    if params.quantization.method == "nf4":
        weights = quantized_weights(load_base(params, args.model))
        if not weights:
            raise ValueError(f"{args.model}: no linear layer was quantized to NF4")
    with io.atomic_path(args.out) as tmp:
        save_file(weights, str(tmp), metadata=w0_metadata(params) | {"device": model_device()})
    size = sum(t.numel() * t.element_size() for t in weights.values())
    print(
        f"W₀ of {len(weights)} NF4 layers ({size / 2**20:.0f} MiB, {params.quantization.compute_dtype}, "
        f"quantized on {model_device()}) -> {args.out}"
        if weights
        else f"quantization.method: none, W₀ is the model's own weight (no tensor stored) -> {args.out}"
    )
