"""Tables of the optional experiments, written by `locus aggregate` beside layers.parquet.

evaluation.parquet     (evaluation.domains non-empty) per (train domain, lr, seed, eval domain):
                       loss and token accuracy before (base) and after, their Δ, in_domain
full_ft_modules.parquet (full_ft.domains non-empty) per (domain, full-FT lr, seed, layer, module):
                       the dense-ΔW metrics of locus.analysis.full_ft
full_ft_layers.parquet per (domain, full-FT lr, seed, layer): stacked fro / rel_fro, mean |ΔW|, ranks
full_ft_rho.parquet    per (domain, LoRA lr, full-FT lr, seed, LoRA metric): Spearman ρ of the LoRA
                       layer profile with full FT's
methods_*.parquet      (`methods` beyond the main method) locus.analysis.methods' comparison
With both lists empty and one method (the default) nothing is read or written.
"""

from __future__ import annotations

import pandas as pd

from locus import io
from locus.analysis import methods
from locus.analysis.full_ft import layer_table, rho_table


def read_full_ft(params) -> pd.DataFrame:
    """Every full-FT cell's effective.parquet with domain, lr, seed columns (cells from params)."""
    from locus.layout import full_ft_cells, full_ft_dir

    frames = []
    for domain, lr, seed in full_ft_cells(params):
        path = full_ft_dir(params, domain, lr, seed) / "effective.parquet"
        if not path.exists():
            raise FileNotFoundError(f"{path}: missing for full-FT cell {domain}, lr={lr}, seed={seed}")
        frames.append(io.read_parquet(path).assign(domain=domain, lr=lr, seed=seed))
    return pd.concat(frames, ignore_index=True)


def tables(params, layers: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """{file stem: table} of the experiments switched on in params; `layers` is the LoRA grid's."""
    out = {}
    if params.evaluation.domains:
        from locus.analysis.evaluation import cross_domain_table

        out["evaluation"] = cross_domain_table(params)
    if params.full_ft.domains:
        modules = read_full_ft(params)
        ft_layers = layer_table(modules)
        out |= {"full_ft_modules": modules, "full_ft_layers": ft_layers, "full_ft_rho": rho_table(layers, ft_layers)}
    return out | methods.tables(params)


def expected_files(params) -> list[str]:
    """The file names `tables` writes for these params (Snakemake declares them as outputs)."""
    names = (["evaluation"] if params.evaluation.domains else []) + (
        ["full_ft_modules", "full_ft_layers", "full_ft_rho"] if params.full_ft.domains else []
    )
    return [f"{n}.parquet" for n in names] + methods.expected_files(params)
