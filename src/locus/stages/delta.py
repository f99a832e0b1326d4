"""Stage: Δ = final − initial for every LoRA matrix of one cell -> delta.parquet.

Reads the two PEFT adapters with safetensors (numpy, no pickles, no torch import) and writes one
row per (layer, module, matrix) with the seed's four statistics (see locus.core.stats); with --metrics
(the cell's metrics.json) also mean_abs_per_lr = mean|Δ| ÷ Σ_t lr_t, the Adam-aware magnitude.
"""

from __future__ import annotations

import json
from pathlib import Path

from locus import io
from locus.core.adapters import load_adapter
from locus.core.stats import delta_table, sum_applied_lr


def add_arguments(parser) -> None:
    parser.add_argument("--init", required=True, help="adapter directory before training")
    parser.add_argument("--final", required=True, help="adapter directory after training")
    parser.add_argument(
        "--metrics", default=None, help="the cell's metrics.json (its sum_lr = Σ_t lr_t gives mean_abs_per_lr)"
    )
    parser.add_argument("--out", required=True, help="delta.parquet to write")


def run(args, params) -> None:
    sum_lr = None
    if args.metrics:
        try:
            sum_lr = sum_applied_lr(json.loads(Path(args.metrics).read_text()))
        except (ValueError, OSError) as e:
            raise ValueError(f"{args.metrics}: {e}") from None
    table = delta_table(load_adapter(args.init), load_adapter(args.final), sum_lr)
    io.write_parquet(args.out, table)
    print(f"{len(table)} matrices over {table['layer'].nunique()} layers -> {args.out}")
