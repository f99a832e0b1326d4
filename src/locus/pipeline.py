"""The pipeline, defined once: every DVC stage, and the code each `locus` command depends on.

`dvc.yaml` is generated from STAGES (locus.dvc_yaml; `locus wiring` writes it, and a test fails when
the committed file differs). Paths come from `locus.layout.PATTERNS`, which the Snakemake rules fill
too. A stage's code dependencies are never listed: they are the `src/locus` files its stage module imports,
transitively (`locus.code_deps.code_files`), so editing any of them makes that stage stale in both tools.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from locus.params import lr_label

CELL_MATRIX = {"domain": "grid.domains", "seed": "grid.seeds"}
# What `locus train --out DIR` writes that later stages read (train_log.csv is a plot, below).
TRAIN_OUTS = ["adapter_final", "metrics.json"]
# What a stage that runs the model on an eval split reads (evaluate, represent): the model as
# quantized, the split as budgeted and encoded, the batch and the autocast.
EVAL_PARAMS = [
    "quantization",
    "data.max_eval_examples",
    "data.short_budget",
    "training.per_device_batch_size",
    "training.max_seq_length",
    "training.overlength",
    "training.mixed_precision",
]


@dataclass(frozen=True)
class Stage:
    """One DVC stage. Strings use layout's `{pattern}` and coordinate names (domain, lr, seed, arm)."""

    name: str
    command: str  # `locus <command> ...`; its module's imports are the stage's code dependencies
    desc: str
    deps: list[str] = field(default_factory=list)
    outs: list[str] = field(default_factory=list)
    params: list[str] = field(default_factory=list)
    matrix: dict[str, str] = field(default_factory=dict)  # coordinate -> params list it runs over
    lr: str = "lr"  # the params key `{lr}` reads when lr is not a matrix coordinate
    metrics: list[str] = field(default_factory=list)
    plots: dict[str, dict] = field(default_factory=dict)

    @property
    def locus_command(self) -> str:
        return self.command.split()[1]


STAGES = [
    Stage(
        "prepare_model",
        "locus prepare-model --out {model_dir}",
        "The base model, saved as safetensors.",
        outs=["{model_dir}"],
        params=["model"],
    ),
    Stage(
        "quantize_base",
        "locus quantize-base --model {model_dir} --out {w0_file}",
        "W₀ as QLoRA training computes with it, quantized once on the training device.",
        deps=["{model_dir}"],
        outs=["{w0_file}"],
        params=["quantization"],
    ),
    Stage(
        "prepare_data",
        "locus prepare-data --domain {domain} --out {data_dir}",
        "One domain's train/eval split.",
        deps=["{raw_file}"],
        outs=["{data_dir}"],
        params=["data"],
        matrix={"domain": "grid.domains"},
    ),
    Stage(
        "init_adapter",
        "locus init-adapter --method {method} --model {model_dir} --seed {seed} --out {init_dir}",
        "The adapter before training, one per method and seed (shared by its cells).",
        deps=["{model_dir}"],
        outs=["{init_dir}"],
        params=["lora", "methods"],
        matrix={"seed": "grid.seeds"},
    ),
    Stage(
        "train",
        "locus train --method {method} --model {model_dir} --w0 {w0_file} --data {data_dir} --init {init_dir} "
        "--before {eval_base} --lr {lr} --seed {seed} --out {cell_dir}",
        "Fine-tuning of one cell (QLoRA by default; the cell's method).",
        deps=["{model_dir}", "{w0_file}", "{data_dir}", "{init_dir}", "{eval_base}"],
        outs=[f"{{cell_dir}}/{name}" for name in TRAIN_OUTS],
        params=["quantization", "training"],
        matrix=CELL_MATRIX,
        plots={"{cell_dir}/train_log.csv": {"x": "step", "y": "loss"}},
    ),
    Stage(
        "delta",
        "locus delta --method {method} --init {init_dir} --final {cell_dir}/adapter_final "
        "--metrics {cell_dir}/metrics.json --out {cell_dir}/delta.parquet",
        "Statistics of final - initial for every adapter matrix.",
        deps=["{init_dir}", "{cell_dir}/adapter_final", "{cell_dir}/metrics.json"],
        outs=["{cell_dir}/delta.parquet"],
        matrix=CELL_MATRIX,
    ),
    Stage(
        "effective",
        "locus effective --method {method} --model {model_dir} --w0 {w0_file} --init {init_dir} "
        "--final {cell_dir}/adapter_final --out {cell_dir}/effective.parquet",
        "The effective update ΔW of every adapted module (prefix tuning: ΔP per layer).",
        deps=["{model_dir}", "{w0_file}", "{init_dir}", "{cell_dir}/adapter_final"],
        outs=["{cell_dir}/effective.parquet"],
        params=["quantization"],
        matrix=CELL_MATRIX,
    ),
    Stage(
        "represent",
        "locus represent --method {method} --model {model_dir} --w0 {w0_file} --adapter {cell_dir}/adapter_final "
        "--data {data_dir} --out {cell_dir}/representation.parquet",
        "Representation change per layer: 1 - linear CKA of hidden states, base vs tuned.",
        deps=["{model_dir}", "{w0_file}", "{data_dir}", "{cell_dir}/adapter_final"],
        outs=["{cell_dir}/representation.parquet"],
        params=EVAL_PARAMS,
        matrix=CELL_MATRIX,
    ),
    # trajectory.domains is [] (no stage) unless training.snapshot_every > 0 (params validation).
    # The train stage writes CELL/trajectory/ but cannot declare an optional out, so the snapshots
    # are a dependency here, not cached by DVC.
    Stage(
        "trajectory",
        "locus trajectory --method {method} --model {model_dir} --w0 {w0_file} --init {init_dir} "
        "--final {cell_dir}/adapter_final --snapshots {cell_dir}/trajectory --out {cell_dir}/trajectory.parquet",
        "Learning trajectory of one cell from its snapshots.",
        deps=[
            "{model_dir}",
            "{w0_file}",
            "{init_dir}",
            "{cell_dir}/adapter_final",
            "{cell_dir}/trajectory",
        ],
        outs=["{cell_dir}/trajectory.parquet"],
        params=["quantization"],
        matrix={"domain": "trajectory.domains", "seed": "grid.seeds"},
    ),
    Stage(
        "evaluate_base",
        "locus evaluate --model {model_dir} --w0 {w0_file} --domains {domain} --out {eval_base}",
        "The base model on one domain's eval split: every cell's eval loss before training.",
        deps=["{model_dir}", "{w0_file}", "{data_dir}"],
        outs=["{eval_base}"],
        params=EVAL_PARAMS,
        matrix={"domain": "grid.domains"},
    ),
    Stage(
        "evaluate",
        "locus evaluate --method {method} --model {model_dir} --w0 {w0_file} --adapter {cell_dir}/adapter_final "
        "--out {cell_dir}/eval.json",
        "One cell scored on every evaluation domain's eval split.",
        deps=["{model_dir}", "{w0_file}", "{results_dir}/data", "{cell_dir}/adapter_final"],
        outs=["{cell_dir}/eval.json"],
        params=[*EVAL_PARAMS, "evaluation"],
        matrix={"domain": "evaluation.domains", "seed": "grid.seeds"},
    ),
    Stage(
        "train_full",
        "locus train-full --model {model_dir} --data {data_dir} --lr {lr} --seed {seed} --out {full_ft_dir}",
        "Full fine-tuning on the same data and budget.",
        deps=["{model_dir}", "{data_dir}"],
        outs=["{full_ft_dir}/delta.safetensors", "{full_ft_dir}/metrics.json"],
        params=["training", "lora.target_modules"],
        matrix={"domain": "full_ft.domains", "lr": "full_ft.learning_rates", "seed": "grid.seeds"},
        plots={"{full_ft_dir}/train_log.csv": {"x": "step", "y": "loss"}},
    ),
    Stage(
        "full_ft_effective",
        "locus full-ft-effective --model {model_dir} --delta {full_ft_dir}/delta.safetensors "
        "--out {full_ft_dir}/effective.parquet",
        "ΔW metrics of the full fine-tuning arm.",
        deps=["{model_dir}", "{full_ft_dir}/delta.safetensors"],
        outs=["{full_ft_dir}/effective.parquet"],
        matrix={"domain": "full_ft.domains", "lr": "full_ft.learning_rates", "seed": "grid.seeds"},
    ),
    # evaluation.parquet and full_ft_*.parquet are written too when those experiments are on; not
    # declared, since DVC cannot declare an output that exists only sometimes.
    Stage(
        "aggregate",
        "locus aggregate --experiment --out-dir {experiment_dir}",
        "The experiment's cells aggregated by layer and module.",
        deps=["{runs_dir}"],  # every cell's files (DVC links the upstream stages' outs there)
        outs=[
            "{experiment_dir}/layers.parquet",
            "{experiment_dir}/modules.parquet",
            "{experiment_dir}/similarity.parquet",
        ],
        params=["grid", "lr", "method", "methods", "analysis", "report.metric", "evaluation", "full_ft"],
        metrics=["{experiment_dir}/summary.json"],
        plots={"{experiment_dir}/layer_profile.csv": {"x": "layer"}},
    ),
    Stage(
        "report",
        "locus report --experiment --tables {experiment_dir} --out {experiment_dir}/report.html "
        "--figures {experiment_dir}/figures",
        "The experiment's report.",
        deps=[
            "{experiment_dir}/layers.parquet",
            "{experiment_dir}/modules.parquet",
            "{experiment_dir}/similarity.parquet",
            "{results_dir}/data",
            "{runs_dir}",
        ],
        outs=["{experiment_dir}/report.html", "{experiment_dir}/figures"],
        params=["report", "grid", "lr", "method", "methods", "evaluation", "full_ft", "trajectory"],
    ),
    # Targeted-layer validation; validation.domains: [] = off. Arms read their layers from arms.json
    # at run time; the all-layer arm is the experiment's grid cell.
    Stage(
        "rank_layers",
        "locus rank-layers --experiment --layers {experiment_dir}/layers.parquet --domain {domain} --out {arms}",
        "Rank one domain's layers and draw the validation arms.",
        deps=["{experiment_dir}/layers.parquet"],
        outs=["{arms}"],
        params=["validation"],
        matrix={"domain": "validation.domains"},
    ),
    Stage(
        "validation_init",
        "locus init-adapter --model {model_dir} --seed {seed} --layers-from {arms} "
        "--arm {arm} --out {arm_dir}/adapter_init",
        "The initial adapter of one validation arm.",
        deps=["{model_dir}", "{arms}"],
        outs=["{arm_dir}/adapter_init"],
        params=["lora", "method", "methods"],
        matrix={"domain": "validation.domains", "arm": "validation.arms", "seed": "validation.seeds"},
    ),
    Stage(
        "validation_train",
        "locus train --model {model_dir} --w0 {w0_file} --data {data_dir} --init {arm_dir}/adapter_init "
        "--before {eval_base} --lr {lr} --seed {seed} --out {arm_dir}",
        "Training one validation arm.",
        deps=["{model_dir}", "{w0_file}", "{data_dir}", "{arm_dir}/adapter_init", "{eval_base}"],
        outs=[f"{{arm_dir}}/{name}" for name in TRAIN_OUTS],
        params=["quantization", "training"],
        matrix={"domain": "validation.domains", "arm": "validation.arms", "seed": "validation.seeds"},
        lr="validation.learning_rate",
    ),
    Stage(
        "validation_report",
        "locus validation-report --experiment --domain {domain} "
        "--out {experiment_dir}/validation/{domain}.html --table {experiment_dir}/validation/{domain}.parquet",
        "Does training the top-ranked layers beat random ones?",
        deps=["{validation_dir}", "{runs_dir}"],
        outs=["{experiment_dir}/validation/{domain}.html", "{experiment_dir}/validation/{domain}.parquet"],
        params=["validation"],
        matrix={"domain": "validation.domains"},
    ),
]


STAGE_BY_NAME = {s.name: s for s in STAGES}
# DVC's experiment LR; Snakemake runs grid.learning_rates and must not go stale when `dvc exp run -S lr=…` edits it.
# `method` likewise: Snakemake runs every method in `methods` (a wildcard of the cell paths).
EXPERIMENT_ONLY = {"lr", "method"}


def per_method(stage: str) -> bool:
    """Whether a stage's jobs belong to one method (it writes a cell or an initial adapter)."""
    return any("{cell_dir}" in out or "{init_dir}" in out for out in STAGE_BY_NAME[stage].outs)


def tracked_params(params, stage: str, method: str | None = None) -> dict:
    """{key: value} of the params keys a stage depends on (its dvc.yaml `params:`), for Snakemake's
    params trigger: editing one of them reruns that stage in both tools, and nothing else does.
    method: the job's method; a per_method stage depends on that method's own `methods` entry
    only (adding a method reruns no other method's jobs)."""
    values = params.model_dump(mode="json")
    if method is not None and per_method(stage):
        values["methods"] = values["methods"][method]
    return {key: _lookup(values, key) for key in STAGE_BY_NAME[stage].params if key not in EXPERIMENT_ONLY}


def _lookup(values: dict, key: str):
    """values["a"]["b"] for key "a.b" (a params dump)."""
    for part in key.split("."):
        values = values[part]
    return values


def experiment_jobs(params) -> list[tuple[str, str]]:
    """Every (stage name, command) of one DVC experiment of these params — the commands `dvc repro`
    runs, each matrix expanded, paths filled — in an order where each job follows the jobs whose
    outputs it reads. For running the pipeline where no workflow engine is installed (the GPU suite
    on a bare machine); Snakemake and DVC remain the way to run it anywhere else."""
    from itertools import product

    from locus import layout

    values = {"results_dir": params.results_dir, "models_dir": params.models_dir, "raw_dir": params.data.raw_dir}
    dumped = params.model_dump(mode="json")
    jobs = []  # (stage, command, deps, outs)
    for stage in STAGES:
        axes = {c: _lookup(dumped, key) for c, key in stage.matrix.items()}
        for combo in product(*axes.values()):
            at = dict(zip(axes, combo))
            at.setdefault("lr", _lookup(dumped, stage.lr))
            at.setdefault("method", params.method)
            at = {k: lr_label(v) if k == "lr" else v for k, v in at.items()}

            def fill(template: str) -> str:
                return layout.expand(template, **values, **at)  # noqa: B023 - used at once

            jobs.append((stage.name, fill(stage.command), [fill(d) for d in stage.deps], [fill(o) for o in stage.outs]))

    def feeds(out: str, dep: str) -> bool:
        return out == dep or out.startswith(dep.rstrip("/") + "/") or dep.startswith(out.rstrip("/") + "/")

    ordered, pending = [], list(jobs)
    while pending:
        ready = next(
            (
                j
                for j in pending
                if not any(feeds(o, d) for other in pending if other is not j for o in other[3] for d in j[2])
            ),
            None,
        )
        if ready is None:
            raise ValueError(f"the stage table has a cycle among {[j[0] for j in pending]}")
        ordered.append(ready)
        pending.remove(ready)
    return [(name, command) for name, command, _, _ in ordered]
