"""Stage: the effective update ΔW = s·B·A of every adapted module of one cell -> effective.parquet.

    locus effective --model models/base --w0 models/base-w0.safetensors --init results/adapter_init/seed=0 \
                    --final CELL/adapter_final --out CELL/effective.parquet

One row per (layer, block, module): rank, scaling, numerical_rank, w0_fro and the metrics of
locus.core.effective (fro, rel_fro, spectral, stable_rank, effective_rank, amplification). No dense ΔW
is formed. W₀ is the weight the training forward pass used: for `quantization.method: nf4` the
NF4 weight dequantized to the compute dtype, read from --w0 (`locus quantize-base`, made once on
the training device) or, without it, computed here by bitsandbytes' quantize_4bit(blocksize=64,
compress_statistics=double_quant) then dequantize_4bit (tests/unit/test_effective.py checks both
against a loaded model); otherwise the weight in `model.dtype`. Weights are read one at a time from model.safetensors or from the
shards named by model.safetensors.index.json, so memory stays at one matrix.

`--init` is optional: with it the stage checks that the initial lora_B is zero, i.e. that the
initial ΔW is exactly 0 (PEFT's default init), and otherwise measures s·(B_f A_f − B_i A_i).
"""

from __future__ import annotations

from locus import io, options
from locus.analysis.updates import effective_table


def add_arguments(parser) -> None:
    options.add_model(parser, w0=True)
    parser.add_argument("--final", "--adapter", dest="final", required=True, help="adapter directory after training")
    parser.add_argument(
        "--init", default=None, help="adapter directory before training (checks that the initial ΔW is 0)"
    )
    parser.add_argument("--out", required=True, help="effective.parquet to write")


def run(args, params) -> None:
    table = effective_table(args.final, args.model, params, init=args.init, w0_file=args.w0)
    io.write_parquet(args.out, table)
    # ‖ΔW‖_F/‖W₀‖_F, or ‖ΔP‖_F for a prefix that started at zero (no relative size)
    metric, name = ("rel_fro", "‖ΔW‖_F/‖W₀‖_F") if table.rel_fro.notna().any() else ("fro", "‖ΔP‖_F")
    top = table.loc[table[metric].idxmax()]
    print(f"{len(table)} modules; largest {name} {top[metric]:.2e} at layer {top.layer} {top.module} -> {args.out}")
