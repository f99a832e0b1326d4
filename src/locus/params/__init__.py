"""The one schema for params.yaml.

Every stage calls `load()` first, so a bad value fails before any work with a message naming the
key (e.g. ``params.yaml: lora.r: Input should be greater than 0``). Presets in ``presets/`` are
overlays: they are deep-merged over params.yaml and validated together. Each section's model is in
locus.params.sections; Params here is the whole file, with the rules that span sections.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from locus.params.sections import (
    AnalysisParams,
    ClusterParams,
    DataParams,
    EvaluationParams,
    ExternalAnalysis,
    FullFtParams,
    GridParams,
    LoraParams,
    MethodParams,
    ModelParams,
    QuantizationParams,
    ReportParams,
    Section,
    TrainingParams,
    TrajectoryParams,
    ValidationParams,
    check_name,
    lr_label,
    name_argument,
)

__all__ = [
    "Params",
    "ParamsError",
    "PRESETS_DIR",
    "preset_chain",
    "check_name",
    "load",
    "lr_label",
    "name_argument",
    "preset_path",
]

PRESETS_DIR = Path("presets")
# Names a method cannot have: a cell directory runs/{domain}/{method}/ would collide.
RESERVED_METHODS = {"full_ft": "the full fine-tuning arm's directory, runs/{domain}/full_ft/"}


class Params(Section):
    results_dir: str = "results"
    models_dir: str = "models"
    # The learning rate of a single DVC experiment (`dvc exp run -S lr=...`); the grid's list is in grid.
    lr: float = Field(0.001, gt=0, le=1)
    model: ModelParams = ModelParams()
    quantization: QuantizationParams = QuantizationParams()
    lora: LoraParams = LoraParams()
    # The fine-tuning methods the grid compares ({name: {peft, learning_rates, lora|ia3|prefix}}),
    # and `method`, the one the main map, DVC experiments, trajectories and validation are about.
    method: str = "lora"
    methods: dict[str, MethodParams] = Field(default_factory=lambda: {"lora": MethodParams()})
    training: TrainingParams = TrainingParams()
    grid: GridParams
    data: DataParams = DataParams()
    analysis: AnalysisParams = AnalysisParams()
    evaluation: EvaluationParams = EvaluationParams()
    full_ft: FullFtParams = FullFtParams()
    validation: ValidationParams = ValidationParams()
    trajectory: TrajectoryParams = TrajectoryParams()
    report: ReportParams = ReportParams()
    cluster: ClusterParams = ClusterParams()
    # Adapters trained elsewhere: {name: {model, adapters: {label: dir}}} -> results/external/{name}/.
    external: dict[str, ExternalAnalysis] = Field(default_factory=dict)
    _loaded: Params | None = PrivateAttr(None)  # set by for_method: the params before resolving

    @field_validator("external")
    @classmethod
    def _external_names(cls, v: dict) -> dict:
        for name in v:
            check_name(name, "external name")
        return v

    @model_validator(mode="after")
    def _methods(self) -> Params:
        for name, m in self.methods.items():
            check_name(name, "method name")
            if name in RESERVED_METHODS:
                raise ValueError(f"methods.{name}: the name is reserved ({RESERVED_METHODS[name]})")
            try:
                self._merged_lora(m)
            except ValidationError as e:
                err = e.errors()[0]
                key = ".".join(str(p) for p in err["loc"])
                raise ValueError(f"methods.{name}.lora.{key}: {err['msg']}") from None
        if self.method not in self.methods:
            raise ValueError(f"method: {self.method!r} is not one of methods {sorted(self.methods)}")
        if (kind := self.method_kind()) != "lora":
            raise ValueError(
                f"method: {self.method!r} is {kind}; the main map (its Δ statistics, subspace similarity, "
                f"trajectories and validation arms) reads plain LoRA adapters, so `method` names a LoRA "
                f"method (any rank); DoRA, IA³ and prefix tuning are compared in the methods section"
            )
        return self

    def for_method(self, name: str | None = None) -> Params:
        """These params as one method's jobs see them: `method` set, the method's lora overrides
        merged into `lora`, and its learning rates as grid.learning_rates. Always derived from the
        params as loaded, so resolving for one method and then another never mixes the two."""
        base = self._loaded or self
        name = base.method if name is None else name
        if name not in base.methods:
            raise ValueError(f"method {name!r} is not one of methods {sorted(base.methods)}")
        m = base.methods[name]
        lora = base._merged_lora(m)
        grid = base.grid.model_copy(update={"learning_rates": m.learning_rates or base.grid.learning_rates})
        resolved = base.model_copy(update={"method": name, "lora": lora, "grid": grid})
        resolved._loaded = base
        return resolved

    @property
    def resolved(self) -> bool:
        """Whether these params are one method's (for_method), as every stage sees them."""
        return self._loaded is not None

    def method_kind(self, name: str | None = None) -> str:
        """'lora', 'dora', 'ia3' or 'prefix': how a method's adapter is built and read."""
        base = self._loaded or self
        m = base.methods[self.method if name is None else name]
        if m.peft == "lora" and base._merged_lora(m).use_dora:
            return "dora"
        return m.peft

    def _merged_lora(self, method: MethodParams) -> LoraParams:
        """The `lora` section with a method's overrides merged in (validated)."""
        return LoraParams.model_validate(self.lora.model_dump() | (method.lora or {}))

    def with_quantization(self, method: str) -> Params:
        """These params with quantization.method replaced (W₀ of an unquantized or NF4 base)."""
        return self.model_copy(update={"quantization": self.quantization.model_copy(update={"method": method})})

    def as_experiment(self) -> Params:
        """The params of one DVC experiment: the grid of `method` alone at the single learning rate `lr`
        (the methods comparison, which needs every method's cells, is Snakemake's)."""
        resolved = self if self.resolved else self.for_method()
        grid = resolved.grid.model_copy(update={"learning_rates": [self.lr]})
        methods = {resolved.method: resolved.methods[resolved.method]}
        experiment = resolved.model_copy(update={"grid": grid, "methods": methods})
        experiment._loaded = resolved._loaded
        return experiment

    @model_validator(mode="after")
    def _trajectory(self) -> Params:
        every, domains = self.training.snapshot_every, self.trajectory.domains
        if bool(every) != bool(domains):
            raise ValueError(
                f"training.snapshot_every={every} and trajectory.domains={domains}: set both "
                f"(snapshots every K steps, analysed for these domains) or neither"
            )
        if any(d not in self.grid.domains for d in domains) or len(set(domains)) != len(domains):
            raise ValueError(f"trajectory.domains: {domains} must be distinct grid.domains {self.grid.domains}")
        return self

    @model_validator(mode="after")
    def _paths_relative(self) -> Params:
        for key in ("results_dir", "models_dir"):
            if not getattr(self, key):
                raise ValueError(f"{key} must not be empty")
        for key in ("evaluation", "full_ft"):
            domains = getattr(self, key).domains
            unknown = [d for d in domains if d not in self.grid.domains]
            if unknown or len(set(domains)) != len(domains):
                raise ValueError(f"{key}.domains: {domains} must be distinct grid.domains {self.grid.domains}")
        return self

    @model_validator(mode="after")
    def _validation_in_grid(self) -> Params:
        """The layer map being validated comes from the grid, so its domains and LR must be in it."""
        v = self.validation
        unknown = [d for d in v.domains if d not in self.grid.domains]
        if unknown or len(set(v.domains)) != len(v.domains):
            raise ValueError(f"validation.domains: {v.domains} must be distinct grid.domains {self.grid.domains}")
        if v.domains and v.learning_rate not in self.grid.learning_rates:
            raise ValueError(
                f"validation.learning_rate: {v.learning_rate:g} is not in grid.learning_rates "
                f"{self.grid.learning_rates} (the layers are ranked from the grid at this LR)"
            )
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
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is unambiguous: accept it
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    except UnicodeDecodeError as e:
        raise ParamsError(f"{path}: not UTF-8 text (byte {e.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        what = " ".join(filter(None, [getattr(e, "context", None), getattr(e, "problem", None)])) or str(e)
        raise ParamsError(f"{where}: invalid YAML: {' '.join(what.split())}") from None
    if data is None:
        if not text.strip():  # a zero-length file is a failed write more often than a choice
            raise ParamsError(f"{path}: empty file (nothing to read; a file of comments sets nothing)")
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    return data


def preset_path(name: str) -> Path:
    return PRESETS_DIR / f"{name}.yaml"


def preset_chain(name: str) -> list[tuple[Path, dict]]:
    """(path, contents without `extends`) of presets/NAME.yaml and the presets it extends, base
    first. A preset may start with `extends: OTHER` to overlay presets/OTHER.yaml (e.g. a CPU-sized
    subset of a full protocol)."""
    chain = [(preset_path(name), _read_yaml(preset_path(name)))]
    while (parent := chain[0][1].pop("extends", None)) is not None:
        if not isinstance(parent, str) or not parent:
            raise ParamsError(f"{chain[0][0]}: extends: must be a preset name, got {parent!r}")
        if preset_path(parent) in [path for path, _ in chain]:
            raise ParamsError(f"{chain[0][0]}: extends: {parent} forms a cycle")
        chain.insert(0, (preset_path(parent), _read_yaml(preset_path(parent))))
    return chain


def load(path: str | os.PathLike = "params.yaml", preset: str | None = None) -> Params:
    """Read params.yaml (plus an optional preset overlay), validate, and return frozen Params."""
    layers = [(Path(path), _read_yaml(Path(path)))] + (preset_chain(preset) if preset else [])
    files = [f for f, _ in layers]
    merged: dict = {}
    for _, layer in layers:
        merged = _deep_merge(merged, layer)
    try:
        return Params.model_validate(merged)
    except ValidationError as e:
        where = " + ".join(str(f) for f in files)
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or '<top>'}: {err['msg']}" for err in e.errors())
        raise ParamsError(f"{where}: {problems}") from None
