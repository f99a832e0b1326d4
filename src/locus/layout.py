"""Where every artefact lives. Snakemake, DVC and the stages all build paths from here.

models/base/                                               prepared base model
models/base-w0.safetensors                                 its NF4 weights as training computes with them
results/
  data/{domain}/{train,eval}.jsonl, stats.json            prepared splits
  adapter_init/{method}/seed={seed}/                       PEFT adapter before training, one per method
                                                           and seed (it depends on both and the model)
  runs/{domain}/{method}/lr={lr}/seed={seed}/adapter_final/ PEFT adapter after training
                                   /train_log.csv          one row per optimizer step
                                   /metrics.json           final train/eval loss, timing
                                   /delta.parquet          statistics of final - initial (main method)
                                   /effective.parquet      ΔW metrics per module (prefix: per layer)
                                   /representation.parquet 1 - CKA per layer
                                   /eval.json              held-out eval (evaluation.domains)
  runs/{domain}/eval_base.json                             the base model on the domain's eval split
  runs/{domain}/full_ft/lr={lr}/seed={seed}/               full fine-tuning arm: delta.safetensors,
                                                           metrics.json, effective.parquet
  layers.parquet, modules.parquet, layer_profile.csv       aggregation over the grid
  report.html, figures/                                    the report
  experiment/                                              the same three for a DVC experiment
  validation/{domain}/arms.json, {arm}/seed={seed}/         targeted-layer validation (cell layout)
  validation.html, validation.parquet                      its report and table
"""

from __future__ import annotations

import re
from pathlib import Path

from locus.params import Params, lr_label

# Every path pattern, written once. `{name}` is a params value (results_dir, models_dir, raw_dir), a
# grid coordinate (domain, method, lr, seed, arm) or another pattern. Snakemake fills the params values and
# keeps the coordinates as wildcards; dvc.yaml (locus.pipeline) fills them with ${...} templating;
# the functions below fill everything.
PATTERNS = {
    "model_dir": "{models_dir}/base",
    "w0_file": "{models_dir}/base-w0.safetensors",
    "raw_file": "{raw_dir}/{domain}.jsonl",
    "data_dir": "{results_dir}/data/{domain}",
    "runs_dir": "{results_dir}/runs",
    "cell_dir": "{runs_dir}/{domain}/{method}/lr={lr}/seed={seed}",
    "init_dir": "{results_dir}/adapter_init/{method}/seed={seed}",
    "eval_base": "{runs_dir}/{domain}/eval_base.json",
    "full_ft_dir": "{runs_dir}/{domain}/full_ft/lr={lr}/seed={seed}",
    "validation_dir": "{results_dir}/validation/{domain}",
    "arms": "{validation_dir}/arms.json",
    "arm_dir": "{validation_dir}/{arm}/seed={seed}",
    "experiment_dir": "{results_dir}/experiment",
    "logs_dir": "{results_dir}/logs",
}
_FIELD = re.compile(r"\{(\w+)\}")


def expand(template: str, **values: object) -> str:
    """Fill `template`'s {pattern} names (recursively) and the given values; leave other {fields}.

    expand("{cell_dir}/metrics.json", results_dir="results") == "results/runs/{domain}/lr={lr}/seed={seed}/metrics.json"
    """

    def fill(match: re.Match) -> str:
        name = match.group(1)
        if name in values:
            return str(values[name])
        if name in PATTERNS:
            return expand(PATTERNS[name], **values)
        return match.group(0)

    return _FIELD.sub(fill, template)


def pattern(name: str, params: Params, **coordinates: object) -> str:
    """PATTERNS[name] with the params values filled in, and the given coordinates; the others stay
    `{domain}`-style fields (what the Snakemake rules use as wildcards)."""
    return expand(
        PATTERNS[name],
        results_dir=params.results_dir,
        models_dir=params.models_dir,
        raw_dir=params.data.raw_dir,
        **coordinates,
    )


def _path(name: str, params: Params, **coordinates: object) -> Path:
    return Path(pattern(name, params, **coordinates))


def model_dir(params: Params) -> Path:
    """models/base: the prepared base model (safetensors + tokenizer + locus_provenance.json).

    A fixed name, so Snakemake and dvc.yaml agree without computing it; the model it holds is
    recorded in locus_provenance.json, and changing `model` re-runs the stage in both tools.
    """
    return _path("model_dir", params)


def data_dir(params: Params, domain: str) -> Path:
    return _path("data_dir", params, domain=domain)


def cell_dir(params: Params, domain: str, lr: float | str, seed: int | str, method: str | None = None) -> Path:
    """runs/{domain}/{method}/lr={lr}/seed={seed}; method: params.method unless given."""
    method = params.method if method is None else method
    return _path("cell_dir", params, domain=domain, method=method, lr=lr_label(float(lr)), seed=seed)


def init_dir(params: Params, seed: int | str, method: str | None = None) -> Path:
    """adapter_init/{method}/seed={seed}: the adapter before training, shared by every cell of the
    method and seed (it depends only on them and the model)."""
    return _path("init_dir", params, method=params.method if method is None else method, seed=seed)


def eval_base_path(params: Params, domain: str) -> Path:
    """runs/{domain}/eval_base.json: the base model (no adapter) scored on the domain's eval split."""
    return _path("eval_base", params, domain=domain)


def full_ft_dir(params: Params, domain: str, lr: float | str, seed: int | str) -> Path:
    """runs/{domain}/full_ft/lr={lr}/seed={seed}: one cell of the full fine-tuning arm."""
    return _path("full_ft_dir", params, domain=domain, lr=lr_label(float(lr)), seed=seed)


def evaluated_cells(params: Params) -> list[tuple[str, float, int]]:
    """The grid cells the held-out evaluation scores (trained on an evaluation domain)."""
    return [c for c in cells(params) if c[0] in params.evaluation.domains]


def full_ft_cells(params: Params) -> list[tuple[str, float, int]]:
    """Every (domain, full-FT lr, seed) of the full fine-tuning arm; empty when it is off."""
    f = params.full_ft
    return [(d, lr, s) for d in f.domains for lr in f.learning_rates for s in params.grid.seeds]


def trajectory_cells(params: Params) -> list[tuple[str, float, int]]:
    """The grid cells whose snapshots (CELL/trajectory/) are analysed; empty when trajectories are off."""
    return [c for c in cells(params) if c[0] in params.trajectory.domains]


def cells(params: Params) -> list[tuple[str, float, int]]:
    """Every (domain, lr, seed) of the main method's grid (params.method), in params order."""
    g = (params if params.resolved else params.for_method()).grid
    return [(d, lr, s) for d in g.domains for lr in g.learning_rates for s in g.seeds]


def method_cells(params: Params) -> list[tuple[str, str, float, int]]:
    """Every (method, domain, lr, seed) of every method in `methods`, each at its own learning rates."""
    return [(m, *cell) for m in params.methods for cell in cells(params.for_method(m))]


def validation_dir(params: Params, domain: str) -> Path:
    """validation/{domain}: arms.json (ranking and arm layer sets) and one directory per arm."""
    return _path("validation_dir", params, domain=domain)


def arms_path(params: Params, domain: str) -> Path:
    """validation/{domain}/arms.json: the layer ranking and every arm's layer set (locus rank-layers)."""
    return _path("arms", params, domain=domain)


def arm_dir(params: Params, domain: str, arm: str, seed: int | str) -> Path:
    """validation/{domain}/{arm}/seed={seed}: one targeted-layer run, laid out like a grid cell.

    The all-layer arm is exactly a grid cell (same init, data, budget and LR), so it is that cell
    (trained by the grid's own rules when the seed is not one of grid.seeds).
    """
    if arm == "all":
        return cell_dir(params, domain, params.validation.learning_rate, seed)
    return _path("arm_dir", params, domain=domain, arm=arm, seed=seed)


def validation_runs(params: Params) -> list[tuple[str, str, int]]:
    """Every (domain, arm, seed) of the targeted-layer validation, "all" included; empty when off."""
    v = params.validation
    return [(d, a, s) for d in v.domains for a in [*v.arms, "all"] for s in v.seeds]
