"""The effective LoRA update ΔW = s·B·A and its geometry, computed without forming ΔW.

PEFT's LoRA adds s·B·A to a frozen W₀, with A ∈ ℝ^{r×in}, B ∈ ℝ^{out×r} and s = α/r
(α/√r with rsLoRA, Kalajdzievski 2023) — `get_delta_weight` in peft/tuners/lora/layer.py. Because
B starts at zero, the final adapter's s·B·A *is* the change to the model, and unlike the seed's
per-matrix statistics it is invariant to B→BG, A→G⁻¹A.

Exact thin SVD in O((out+in)·r²): B = Q_b R_b and Aᵀ = Q_a R_a (reduced QR), so
ΔW = s·Q_b (R_b R_aᵀ) Q_aᵀ; the SVD of the r×r core, R_b R_aᵀ = U_c Σ V_cᵀ, gives
ΔW = (Q_b U_c) (sΣ) (Q_a V_c)ᵀ. Metrics per module (σ the singular values of ΔW):
  fro            ‖ΔW‖_F = √Σσ²
  rel_fro        ‖ΔW‖_F / ‖W₀‖_F — size-normalised change (W₀ as trained: NF4-dequantized for QLoRA)
  spectral       ‖ΔW‖₂ = σ₁
  stable_rank    ‖ΔW‖²_F / ‖ΔW‖²₂ (Rudelson & Vershynin 2007)
  effective_rank exp(H(p)), p = σ/Σσ (Roy & Vetterli 2007)
  amplification  ‖ΔW‖_F / ‖Uᵀ W₀ V‖_F with U, V the top-r singular vectors of ΔW (Hu et al.
                 2021, §7.3: how much ΔW amplifies directions W₀ does not emphasise)
Subspace similarity (Hu et al. 2021, §7.2): φ(U_i, U_j) = ‖U_iᵀ U_j‖²_F / k for the top-k left
singular vectors of two updates; 1 for the same subspace, ~k/out for random ones.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ADAPTER_KEY = re.compile(r"^base_model\.model\.(?P<base>.*\.layers\.(?P<layer>\d+)\.(?P<block>\w+)\.(?P<module>\w+))"
                         r"\.lora_(?P<matrix>[AB])\.weight$")
METRICS = ("fro", "rel_fro", "spectral", "stable_rank", "effective_rank", "amplification")


@dataclass
class Update:
    """The thin SVD of one module's ΔW: ΔW = U · diag(sigma) · Vt."""

    u: np.ndarray  # (out, r)
    sigma: np.ndarray  # (r,), descending
    vt: np.ndarray  # (r, in)


def scaling(config: dict, module_path: str) -> float:
    """s for one module from adapter_config.json: α/r (α/√r with rsLoRA), honouring rank/alpha patterns."""
    r = _pattern_value(config.get("rank_pattern") or {}, module_path, config["r"])
    alpha = _pattern_value(config.get("alpha_pattern") or {}, module_path, config["lora_alpha"])
    return alpha / (r ** 0.5 if config.get("use_rslora") else r)


def _pattern_value(pattern: dict, module_path: str, default):
    # PEFT matches pattern keys as regex suffixes of the module name.
    for key, value in pattern.items():
        if re.match(rf"(.*\.)?{key}$", module_path):
            return value
    return default


def thin_svd(a: np.ndarray, b: np.ndarray, scale: float) -> Update:
    """Exact SVD of scale·B·A via QR of B and Aᵀ and an r×r SVD (see module docstring)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    qb, rb = np.linalg.qr(b)
    qa, ra = np.linalg.qr(a.T)
    uc, sigma, vct = np.linalg.svd(rb @ ra.T, full_matrices=False)
    return Update(u=qb @ uc, sigma=scale * sigma, vt=vct @ qa.T)


def update_metrics(upd: Update, w0: np.ndarray | None) -> dict:
    sigma = upd.sigma
    fro = float(np.sqrt(np.sum(sigma**2)))
    spectral = float(sigma[0]) if sigma.size else 0.0
    out = {"fro": fro, "spectral": spectral, "rank": int(sigma.size)}
    out["stable_rank"] = fro**2 / spectral**2 if spectral > 0 else 0.0
    p = sigma[sigma > 0] / sigma.sum() if fro > 0 else np.array([1.0])
    out["effective_rank"] = float(np.exp(-np.sum(p * np.log(p)))) if fro > 0 else 0.0
    if w0 is not None:
        w0 = np.asarray(w0, np.float64)
        out["rel_fro"] = fro / float(np.linalg.norm(w0))
        projected = float(np.linalg.norm(upd.u.T @ w0 @ upd.vt.T))
        out["amplification"] = fro / projected if projected > 0 else float("nan")
    return out


def subspace_similarity(u_i: np.ndarray, u_j: np.ndarray, k: int) -> float:
    """φ = ‖U_iᵀ U_j‖²_F / k over the top-k columns (both bases orthonormal)."""
    k = min(k, u_i.shape[1], u_j.shape[1])
    return float(np.linalg.norm(u_i[:, :k].T @ u_j[:, :k]) ** 2 / k)


def adapter_updates(tensors: dict[str, np.ndarray], config: dict) -> dict[str, tuple[dict, Update]]:
    """{base weight name: (key info, Update)} for every LoRA module of a PEFT adapter."""
    pairs: dict[str, dict] = {}
    for key, value in tensors.items():
        m = ADAPTER_KEY.match(key)
        if not m:
            raise ValueError(f"adapter tensor {key!r} is not a per-layer LoRA weight")
        entry = pairs.setdefault(m["base"], {"layer": int(m["layer"]), "block": m["block"], "module": m["module"]})
        entry[m["matrix"]] = value
    out = {}
    for base, entry in sorted(pairs.items()):
        if "A" not in entry or "B" not in entry:
            raise ValueError(f"{base}: adapter has lora_A or lora_B but not both")
        a, b = entry.pop("A"), entry.pop("B")
        out[base + ".weight"] = (entry, thin_svd(a, b, scaling(config, base)))
    return out


def read_adapter_config(directory: str | Path) -> dict:
    path = Path(directory) / "adapter_config.json"
    config = json.loads(path.read_text())
    kind = config.get("peft_type", "LORA")
    if kind != "LORA" or config.get("use_dora"):
        raise ValueError(f"{path}: {'DoRA' if config.get('use_dora') else kind} adapters are not supported (plain LoRA only)")
    return config
