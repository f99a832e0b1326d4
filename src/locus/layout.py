"""Where every artefact lives. Snakemake, DVC and the stages all build paths from here.

models/base/                                               prepared base model
results/
  data/{domain}/{train,eval}.jsonl, stats.json            prepared splits
  runs/{domain}/lr={lr}/seed={seed}/adapter_init/          PEFT adapter before training
                                   /adapter_final/         PEFT adapter after training
                                   /train_log.csv          one row per optimizer step
                                   /metrics.json           final train/eval loss, timing
                                   /delta.parquet          statistics of final - initial
  layers.parquet, modules.parquet, layer_profile.csv       aggregation over the grid
  report.html, figures/                                    the report
  experiment/                                              the same three for a DVC experiment
"""

from __future__ import annotations

from pathlib import Path

from locus.params import Params, lr_label


def model_dir(params: Params) -> Path:
    """models/base: the prepared base model (safetensors + tokenizer + locus_provenance.json).

    A fixed name, so Snakemake and dvc.yaml agree without computing it; the model it holds is
    recorded in locus_provenance.json, and changing `model` re-runs the stage in both tools.
    """
    return Path(params.models_dir) / "base"


def data_dir(params: Params, domain: str) -> Path:
    return Path(params.results_dir) / "data" / domain


def cell_dir(params: Params, domain: str, lr: float | str, seed: int | str) -> Path:
    lr = lr_label(float(lr))
    return Path(params.results_dir) / "runs" / domain / f"lr={lr}" / f"seed={seed}"


def cells(params: Params) -> list[tuple[str, float, int]]:
    """Every (domain, lr, seed) of the grid, in params order."""
    g = params.grid
    return [(d, lr, s) for d in g.domains for lr in g.learning_rates for s in g.seeds]
