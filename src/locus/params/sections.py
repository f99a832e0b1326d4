"""The sections of params.yaml, one model each, and the name and list rules they share.

locus.params puts them together (Params: the whole file, with the rules that span sections) and
loads them; this module says what each section may hold.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator


def check_name(name: str, what: str = "name") -> str:
    """A name that becomes part of a path (a domain, an arm): letters, digits, '_' or '-', nothing else."""
    if not name or not name.replace("_", "").replace("-", "").isalnum() or not name.isascii():
        raise ValueError(f"{what} {name!r} must be letters, digits, '_' or '-' (it names files)")
    return name


def name_argument(text: str) -> str:
    """argparse type for a command-line name that becomes a path (check_name's rule)."""
    import argparse

    try:
        return check_name(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _distinct(v: list) -> list:
    if len(set(v)) != len(v):
        raise ValueError(f"{v} lists an item twice (each names its own outputs)")
    return v


# A list of module names, domains, learning rates or seeds: each once.
Distinct = AfterValidator(_distinct)


def _check_lrs(v: list[float]) -> list[float]:
    for lr in v:
        if not 0 < lr <= 1:
            raise ValueError(f"learning rate {lr} is outside (0, 1]")
    return v


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelParams(Section):
    # A built-in name (see locus.stages.prepare_model.BUILTIN), a local HF directory, or a hub id.
    source: str = "smollm2-135m-instruct"
    # dtype the base weights are saved and (without quantization) trained in.
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"


class QuantizationParams(Section):
    method: Literal["nf4", "none"] = "nf4"
    double_quant: bool = True
    compute_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    # On CPU, dequantize each NF4 matrix once (the same values bitsandbytes dequantizes on every
    # call; locus.training.nf4) instead of running bitsandbytes' per-call kernels. CUDA always uses bitsandbytes.
    cpu_kernel: Literal["dequantize_once", "bitsandbytes"] = "dequantize_once"


class LoraParams(Section):
    r: int = Field(16, gt=0, le=4096)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: Annotated[list[str], Distinct] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"],
        min_length=1,
    )
    use_rslora: bool = False  # scaling alpha/sqrt(r) instead of alpha/r (Kalajdzievski 2023)
    use_dora: bool = (
        False  # DoRA: a learned magnitude per output row times the LoRA-updated direction (Liu et al. 2024)
    )


class IA3Params(Section):
    """IA³ (Liu et al. 2022, "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than
    In-Context Learning"): a learned vector rescales each target's outputs, or its inputs for
    feed-forward modules. Defaults: PEFT's own targets for Llama (k, v and down_proj)."""

    target_modules: Annotated[list[str], Distinct] = Field(
        default_factory=lambda: ["k_proj", "v_proj", "down_proj"], min_length=1
    )
    feedforward_modules: Annotated[list[str], Distinct] = Field(default_factory=lambda: ["down_proj"])

    @model_validator(mode="after")
    def _feedforward_targeted(self) -> IA3Params:
        if stray := [m for m in self.feedforward_modules if m not in self.target_modules]:
            raise ValueError(f"feedforward_modules {stray} are not in target_modules {self.target_modules}")
        return self


class PrefixParams(Section):
    """Prefix tuning (Li & Liang 2021): trained key/value vectors prepended at every layer."""

    num_virtual_tokens: int = Field(16, gt=0, le=1024)
    # zero: PEFT's near no-op start (init_weights="zero": zero keys and values, which still take a
    # little attention mass); random: PEFT's default N(0, 1) table, which on SmolLM2-135M raised the
    # eval loss from 1.6–1.8 to 4.8–7.4 before any step (docs/experiments.md), so a map would show
    # the damage of the start as much as what training wrote.
    init: Literal["zero", "random"] = "zero"


PEFT_KINDS = ("lora", "ia3", "prefix")


class MethodParams(Section):
    """One named fine-tuning method of the grid: a PEFT kind, its settings and its learning rates.

    lora: overrides of the top-level `lora` section (r, alpha, use_dora, …) for a LoRA-family method.
    learning_rates: this method's own (each method has its usual range); default grid.learning_rates.
    """

    peft: Literal["lora", "ia3", "prefix"] = "lora"
    learning_rates: Annotated[list[float], Distinct] | None = Field(None, min_length=1)
    lora: dict[str, object] | None = None
    ia3: IA3Params | None = None
    prefix: PrefixParams | None = None

    @field_validator("learning_rates")
    @classmethod
    def _sane_lrs(cls, v: list[float] | None) -> list[float] | None:
        return v if v is None else _check_lrs(v)

    @model_validator(mode="after")
    def _settings_of_its_kind(self) -> MethodParams:
        for kind in PEFT_KINDS:
            if kind != self.peft and getattr(self, kind) is not None:
                raise ValueError(f"{kind}: a {self.peft} method has no {kind} settings (peft: {self.peft})")
        return self


class TrainingParams(Section):
    epochs: float = Field(1, gt=0)
    max_steps: int = Field(-1, ge=-1)  # -1: run the full epochs
    per_device_batch_size: int = Field(2, gt=0)
    grad_accum_steps: int = Field(4, gt=0)
    lr_scheduler: Literal["cosine", "linear", "constant", "constant_with_warmup"] = "cosine"
    warmup_ratio: float = Field(0.1, ge=0, lt=1)
    weight_decay: float = Field(0.0, ge=0)
    max_grad_norm: float = Field(1.0, gt=0)
    max_seq_length: int = Field(256, ge=16)
    # An example longer than max_seq_length is cut to fit ("truncate") or left out ("drop");
    # either way the count is reported in metrics.json.
    overlength: Literal["truncate", "drop"] = "truncate"
    gradient_checkpointing: bool = False
    # Concatenate each micro-batch into one unpadded row with per-example positions (see
    # stages/train.make_collator): same loss, no compute spent on padding.
    padding_free: bool = False
    optimizer: str = "adamw_torch"
    # bf16 autocast of the forward/backward (fp32 master weights and optimizer state either way).
    # auto: on CUDA with bf16 support; off on CPU, where it measured slower (docs/performance.md).
    mixed_precision: Literal["auto", "bf16", "no"] = "auto"
    # Bit-identical reruns on CUDA: deterministic kernels only (torch.use_deterministic_algorithms,
    # cuBLAS workspace, no cuDNN autotuning), at some speed. CPU runs are bit-identical either way.
    deterministic: bool = False
    # Resumable checkpoints (adapter + optimizer + scheduler + RNG + data position): every N
    # optimizer steps (an integer >= 1), every fraction of the run (0 < x < 1), or never (0).
    checkpoint_every: float = Field(0.5, ge=0)
    # Learning trajectories (locus.training.snapshots): save the LoRA tensors every K optimizer steps and
    # after the last one to CELL/trajectory/step=NNNNNN.safetensors; 0 = off.
    snapshot_every: int = Field(0, ge=0)

    @field_validator("checkpoint_every")
    @classmethod
    def _every(cls, v: float) -> float:
        if v >= 1 and v != int(v):
            raise ValueError(f"{v} must be an integer number of steps (>= 1), a fraction in (0, 1), or 0 (off)")
        return v


class GridParams(Section):
    domains: Annotated[list[str], Distinct] = Field(min_length=1)
    learning_rates: Annotated[list[float], Distinct] = Field(default_factory=lambda: [0.0002, 0.001], min_length=1)
    seeds: Annotated[list[int], Distinct] = Field(default_factory=lambda: [0], min_length=1)

    @field_validator("learning_rates")
    @classmethod
    def _sane_lrs(cls, v: list[float]) -> list[float]:
        return _check_lrs(v)

    @field_validator("domains")
    @classmethod
    def _domain_names(cls, v: list[str]) -> list[str]:
        for d in v:
            check_name(d, "domain")
        return v


class DataParams(Section):
    raw_dir: str = "data/raw"
    eval_fraction: float = Field(0.1, gt=0, lt=1)
    # Examples per domain *after* over-length handling (a dropped example is replaced by the next
    # one), so every domain trains the same number of optimizer steps. None: all.
    max_train_examples: int | None = Field(None, gt=0)
    max_eval_examples: int | None = Field(None, gt=0)
    # A domain with fewer usable examples than max_*_examples fails (fail), or trains and is
    # evaluated on what it has, flagged in metrics.json and the report (train_fewer).
    short_budget: Literal["fail", "train_fewer"] = "fail"
    split_salt: str = "locus"  # changing it draws a different train/eval split


class AnalysisParams(Section):
    # Number of top singular directions compared by the subspace similarity φ (capped at r).
    similarity_k: int = Field(4, gt=0)


class EvaluationParams(Section):
    """Held-out cross-domain evaluation (stages/evaluate.py). A list, not a flag, switches it on so
    that dvc.yaml can gate its stages with a matrix over it (an empty matrix yields no stage)."""

    # Domains of the cross-domain matrix: every grid cell trained on one of them is scored on each
    # of their eval splits, and so is the base model. [] = off. Must be grid domains.
    domains: list[str] = Field(default_factory=list)


class FullFtParams(Section):
    """The full fine-tuning arm (stages/train_full.py): all weights, same data, budget and schedule."""

    domains: list[str] = Field(default_factory=list)  # grid domains to fine-tune fully; [] = off
    # Full FT wants a much smaller LR than LoRA (see params.yaml for the choice).
    learning_rates: Annotated[list[float], Distinct] = Field(default_factory=lambda: [1.0e-5, 5.0e-5], min_length=1)

    @field_validator("learning_rates")
    @classmethod
    def _sane_lrs(cls, v: list[float]) -> list[float]:
        return _check_lrs(v)


class ValidationParams(Section):
    """Targeted-layer validation of the layer map (stages/rank_layers.py, stages/validation_report.py).

    Layers are ranked by `metric` (averaged over the grid's seeds at `learning_rate`); adapters are
    then trained on the top-k layers only, on k random layers (one arm per randomN) and compared
    with the all-layer grid cell, each at every seed in `seeds`. Like the other optional
    experiments, a non-empty domain list switches it on (it gates dvc.yaml's stages: an empty
    matrix yields no stage). The arms are a list, not a count, because dvc.yaml needs a list to
    make one stage per arm.
    """

    domains: list[str] = Field(default_factory=list)  # grid domains to validate; [] = off
    # What "most modified" means: a size-aware magnitude. `mean` (signed bias) cannot rank.
    metric: Literal["rel_fro", "fro", "mean_abs", "var_abs", "var"] = "rel_fro"
    k: int = Field(4, gt=0)  # layers per targeted arm; checked against the model's layer count at run time
    # top: the k highest-ranked layers; random0..random{R-1}: R seeded random k-sets; bottom: the
    # k lowest-ranked. The all-layer arm is always the grid cell at the same seed and LR.
    arms: list[str] = Field(default_factory=lambda: ["top", "random0", "random1", "random2"])
    seeds: Annotated[list[int], Distinct] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    learning_rate: float = Field(0.001, gt=0, le=1)  # must be one of grid.learning_rates
    draw_seed: int = Field(0, ge=0)  # seeds the numpy Generator that draws the random k-sets

    @field_validator("arms")
    @classmethod
    def _arms(cls, v: list[str]) -> list[str]:
        bad = [a for a in v if a not in ("top", "bottom") and not re.fullmatch(r"random(0|[1-9]\d*)", a)]
        if bad:
            raise ValueError(f"{bad}: arms are top, bottom or random0, random1, ... ('all' is the grid cell)")
        draws = sorted(int(a[6:]) for a in v if a.startswith("random"))
        if "top" not in v or draws != list(range(len(draws))) or not draws or len(set(v)) != len(v):
            raise ValueError(f"{v} must hold 'top' and random0..random{{R-1}} (R >= 1, each once)")
        return v

    @property
    def random_arms(self) -> list[str]:
        return [a for a in self.arms if a.startswith("random")]


class TrajectoryParams(Section):
    """Learning trajectories (stages/trajectory.py): training.snapshot_every says how often the train
    stage saves the adapter; this list says which domains' cells are analysed and reported. A list,
    because dvc.yaml gates its trajectory stages with a matrix over it (a matrix cannot test a
    number). Non-empty exactly when training.snapshot_every > 0."""

    domains: list[str] = Field(default_factory=list)  # grid domains; [] = off


class ExternalAnalysis(Section):
    """One `locus external` comparison (stages/external.py): adapters trained elsewhere, one base model.

    The Snakemake target results/external/{name}/report.html runs it for `external.{name}`.
    """

    model: str = Field(min_length=1)  # base model directory the adapters were trained on (safetensors)
    adapters: dict[str, str] = Field(min_length=1)  # label -> PEFT adapter directory (save_pretrained)
    init: dict[str, str] = Field(default_factory=dict)  # label -> adapter saved before training (optional)
    base_quantization: Literal["nf4", "none"] | None = None  # W₀ as trained; None: quantization.method

    @field_validator("adapters", "init")
    @classmethod
    def _labels(cls, v: dict[str, str]) -> dict[str, str]:
        for label, directory in v.items():
            check_name(label, "adapter label")
            if not directory:
                raise ValueError(f"adapter label {label!r}: no directory given")
        return v

    @model_validator(mode="after")
    def _init_labels(self) -> ExternalAnalysis:
        if unknown := sorted(set(self.init) - set(self.adapters)):
            raise ValueError(f"init: {unknown} are not labels of adapters {sorted(self.adapters)}")
        return self


class ReportParams(Section):
    title: str = "Locus: where does fine-tuning write?"
    # The seed's headline statistic by default; rel_fro (‖ΔW‖_F/‖W₀‖_F) is the size-normalised view.
    metric: Literal["mean_abs", "mean", "var", "var_abs", "fro", "rel_fro"] = "mean_abs"


class ClusterParams(Section):
    """Resources for `snakemake --profile workflow/profiles/slurm` (ignored by local runs and DVC).

    Every submitted job gets cpus/mem_mb/runtime_min; the train jobs get the train_* values and,
    when gpus_per_train_job > 0, `--gpus=[gpu_type:]N` (full FT: full_ft_gpu_type, if set). Empty partition/account: the cluster's
    default (the SLURM plugin then tries to guess an account).
    """

    partition: str = ""
    account: str = ""
    cpus: int = Field(1, gt=0)  # --cpus-per-task of every job but train
    mem_mb: int = Field(4000, gt=0)  # --mem of every job but train
    runtime_min: int = Field(30, gt=0)  # -t (minutes) of every job but train
    train_cpus: int = Field(2, gt=0)
    train_mem_mb: int = Field(16000, gt=0)
    train_runtime_min: int = Field(120, gt=0)
    gpus_per_train_job: int = Field(0, ge=0, le=1)  # 0: train on CPU (GPUs hidden); 1: one GPU (never more)
    gpu_type: str = ""  # e.g. a100 -> --gpus=a100:N; empty: any GPU
    # Full FT holds ≥ 18 bytes per parameter on its GPU (≈ 58 GB for a 3.2B model), which SLURM cannot
    # ask for by amount: name a GPU type that has it (e.g. h100); empty: gpu_type.
    full_ft_gpu_type: str = ""
    slurm_extra: str = ""  # extra sbatch flags for every job, e.g. "--qos=short"

    @field_validator("partition", "account")
    @classmethod
    def _slurm_name(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z0-9_.,-]+", v):
            raise ValueError(f"{v!r} must be letters, digits, '_', '.', ',' or '-'")
        return v

    @field_validator("gpu_type", "full_ft_gpu_type")
    @classmethod
    def _gpu_type(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z0-9_.]+", v):
            raise ValueError(f"{v!r} must be letters, digits, '_' or '.' (e.g. a100)")
        return v


def lr_label(lr: float) -> str:
    """How a learning rate appears in paths and wildcards (e.g. 0.0002, 0.001, 1e-05)."""
    return f"{lr:g}"
