"""The one schema for params.yaml.

Every stage calls `load()` first, so a bad value fails before any work with a message naming the
key (e.g. ``params.yaml: lora.r: Input should be greater than 0``). Presets in ``presets/`` are
overlays: they are deep-merged over params.yaml and validated together.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PRESETS_DIR = Path("presets")


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


class LoraParams(Section):
    r: int = Field(16, gt=0, le=4096)
    alpha: float = Field(32, gt=0)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj"],
        min_length=1,
    )
    use_rslora: bool = False  # scaling alpha/sqrt(r) instead of alpha/r (Kalajdzievski 2023)

    @field_validator("target_modules")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate module names in {v}")
        return v


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
    optimizer: str = "adamw_torch"


class GridParams(Section):
    domains: list[str] = Field(min_length=1)
    learning_rates: list[float] = Field(default_factory=lambda: [0.0002, 0.001], min_length=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)

    @field_validator("learning_rates")
    @classmethod
    def _sane_lrs(cls, v: list[float]) -> list[float]:
        for lr in v:
            if not 0 < lr <= 1:
                raise ValueError(f"learning rate {lr} is outside (0, 1]")
        return v

    @field_validator("domains")
    @classmethod
    def _domain_names(cls, v: list[str]) -> list[str]:
        for d in v:
            if not d.replace("_", "").replace("-", "").isalnum():
                raise ValueError(f"domain {d!r} must be letters, digits, '_' or '-' (it names files)")
        if len(set(v)) != len(v):
            raise ValueError(f"duplicate domains in {v}")
        return v


class DataParams(Section):
    raw_dir: str = "data/raw"
    eval_fraction: float = Field(0.1, gt=0, lt=1)
    max_train_examples: int | None = Field(None, gt=0)  # None: all
    max_eval_examples: int | None = Field(None, gt=0)
    split_salt: str = "locus"  # changing it draws a different train/eval split


class AnalysisParams(Section):
    # Number of top singular directions compared by the subspace similarity φ (capped at r).
    similarity_k: int = Field(4, gt=0)


class ReportParams(Section):
    title: str = "Locus: where does fine-tuning write?"
    # The seed's headline statistic by default; rel_fro (‖ΔW‖_F/‖W₀‖_F) is the size-normalised view.
    metric: Literal["mean_abs", "mean", "var", "var_abs", "fro", "rel_fro"] = "mean_abs"


class ClusterParams(Section):
    """Resources for `snakemake --profile workflow/profiles/slurm` (ignored by local runs and DVC).

    Every submitted job gets cpus/mem_mb/runtime_min; the train jobs get the train_* values and,
    when gpus_per_train_job > 0, `--gpus=[gpu_type:]N`. Empty partition/account: the cluster's
    default (the SLURM plugin then tries to guess an account).
    """

    partition: str = ""
    account: str = ""
    cpus: int = Field(1, gt=0)                    # --cpus-per-task of every job but train
    mem_mb: int = Field(4000, gt=0)               # --mem of every job but train
    runtime_min: int = Field(30, gt=0)            # -t (minutes) of every job but train
    train_cpus: int = Field(2, gt=0)
    train_mem_mb: int = Field(16000, gt=0)
    train_runtime_min: int = Field(120, gt=0)
    gpus_per_train_job: int = Field(0, ge=0)      # 0: train on CPU
    gpu_type: str = ""                            # e.g. a100 -> --gpus=a100:N; empty: any GPU
    slurm_extra: str = ""                         # extra sbatch flags for every job, e.g. "--qos=short"

    @field_validator("partition", "account")
    @classmethod
    def _slurm_name(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z0-9_.,-]+", v):
            raise ValueError(f"{v!r} must be letters, digits, '_', '.', ',' or '-'")
        return v

    @field_validator("gpu_type")
    @classmethod
    def _gpu_type(cls, v: str) -> str:
        if v and not re.fullmatch(r"[A-Za-z0-9_.]+", v):
            raise ValueError(f"{v!r} must be letters, digits, '_' or '.' (e.g. a100)")
        return v


class Params(Section):
    results_dir: str = "results"
    models_dir: str = "models"
    # The learning rate of a single DVC experiment (`dvc exp run -S lr=...`); the grid's list is in grid.
    lr: float = Field(0.001, gt=0, le=1)
    model: ModelParams = ModelParams()
    quantization: QuantizationParams = QuantizationParams()
    lora: LoraParams = LoraParams()
    training: TrainingParams = TrainingParams()
    grid: GridParams
    data: DataParams = DataParams()
    analysis: AnalysisParams = AnalysisParams()
    report: ReportParams = ReportParams()
    cluster: ClusterParams = ClusterParams()

    def as_experiment(self) -> "Params":
        """The params of one DVC experiment: the grid at the single learning rate `lr`."""
        return self.model_copy(update={"grid": self.grid.model_copy(update={"learning_rates": [self.lr]})})

    @model_validator(mode="after")
    def _paths_relative(self) -> "Params":
        for key in ("results_dir", "models_dir"):
            if not getattr(self, key):
                raise ValueError(f"{key} must not be empty")
        return self


class ParamsError(ValueError):
    """A params file is missing, unreadable or invalid; the message names file and key."""


def _deep_merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ParamsError(f"{path}: invalid YAML: {e}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def preset_path(name: str) -> Path:
    return PRESETS_DIR / f"{name}.yaml"


def load(path: str | os.PathLike = "params.yaml", preset: str | None = None) -> Params:
    """Read params.yaml (plus an optional preset overlay), validate, and return frozen Params."""
    files = [Path(path)] + ([preset_path(preset)] if preset else [])
    merged: dict = {}
    for f in files:
        merged = _deep_merge(merged, _read_yaml(f))
    try:
        return Params.model_validate(merged)
    except ValidationError as e:
        where = " + ".join(str(f) for f in files)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<top>'}: {err['msg']}" for err in e.errors()
        )
        raise ParamsError(f"{where}: {problems}") from None


def lr_label(lr: float) -> str:
    """How a learning rate appears in paths and wildcards (e.g. 0.0002, 0.001, 1e-05)."""
    return f"{lr:g}"
