"""Stage: per-module metrics of one full-FT cell's dense ΔW -> effective.parquet (locus.analysis.full_ft).

    locus full-ft-effective --model models/base --delta CELL/delta.safetensors --out CELL/effective.parquet

One row per (layer, block, module): w0_fro, fro, rel_fro, spectral, stable_rank, effective_rank,
numerical_rank, rank90, mean_abs. W₀ is the base weight in `model.dtype` — what full fine-tuning
started from (no NF4 round trip: full FT trains unquantized weights).
"""

from __future__ import annotations

import pandas as pd

from locus import io, options

COLUMNS = [
    "layer",
    "block",
    "module",
    "w0_fro",
    "fro",
    "rel_fro",
    "spectral",
    "stable_rank",
    "effective_rank",
    "numerical_rank",
    "rank90",
    "mean_abs",
]


def full_ft_table(delta_file, model_dir, params) -> pd.DataFrame:
    from safetensors import safe_open

    from locus.analysis.full_ft import dense_metrics
    from locus.analysis.updates import plain_weights
    from locus.core.keys import weight_key

    rows = []
    with safe_open(delta_file, "np") as f, plain_weights(model_dir, params) as base:
        for key in f.keys():
            rows.append(weight_key(key) | dense_metrics(f.get_tensor(key), base[key]))
    if not rows:
        raise ValueError(f"{delta_file}: holds no ΔW")
    table = pd.DataFrame(rows)[COLUMNS].sort_values(["layer", "module"], kind="stable").reset_index(drop=True)
    return table.astype({"layer": "int32", "numerical_rank": "int32", "rank90": "int32"})


def add_arguments(parser) -> None:
    options.add_model(parser, help="prepared base model directory (W₀)")
    parser.add_argument("--delta", required=True, help="delta.safetensors written by locus train-full")
    parser.add_argument("--out", required=True, help="effective.parquet to write")


def run(args, params) -> None:
    table = full_ft_table(args.delta, args.model, params)
    io.write_parquet(args.out, table)
    print(
        f"{len(table)} modules; full-FT ΔW effective rank {table.effective_rank.mean():.0f} (mean), "
        f"rank for 90% energy {table.rank90.mean():.0f} -> {args.out}"
    )
