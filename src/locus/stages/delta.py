"""Stage: Δ = final − initial for every LoRA matrix of one cell -> delta.parquet.

Reads the two PEFT adapters with safetensors (numpy, no pickles, no torch import) and writes one
row per (layer, module, matrix) with the seed's four statistics (see locus.stats).
"""

from __future__ import annotations

from pathlib import Path

from safetensors.numpy import load_file

from locus import io
from locus.stats import delta_table

ADAPTER_FILE = "adapter_model.safetensors"


def load_adapter(directory: str | Path) -> dict:
    path = Path(directory) / ADAPTER_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no adapter weights (safetensors) here")
    return load_file(path)


def add_arguments(parser) -> None:
    parser.add_argument("--init", required=True, help="adapter directory before training")
    parser.add_argument("--final", required=True, help="adapter directory after training")
    parser.add_argument("--out", required=True, help="delta.parquet to write")


def run(args, params) -> None:
    table = delta_table(load_adapter(args.init), load_adapter(args.final))
    with io.atomic_path(args.out) as tmp:
        table.to_parquet(tmp, index=False)
    print(f"{len(table)} matrices over {table['layer'].nunique()} layers -> {args.out}")
