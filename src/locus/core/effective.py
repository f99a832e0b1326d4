"""The effective LoRA update ΔW = s·B·A and its geometry, computed without ever forming ΔW.

Why ΔW. PEFT's LoRA layer computes h = W₀x + s·B·A·x with A ∈ ℝ^{r×in}, B ∈ ℝ^{out×r} (Hu et al.
2021, "LoRA", eq. 3) and s = α/r, or α/√r with rsLoRA (Kalajdzievski 2023); `rank_pattern` and
`alpha_pattern` override r and α per module (peft/tuners/lora/layer.py `update_layer`,
peft/utils/other.py `get_pattern_key`). B·A is unchanged by B→BG, A→G⁻¹A, so statistics of A and B
alone are not identifiable; ΔW is. B starts at exactly zero, so the initial ΔW is 0 and the final
adapter's s·B·A *is* the change training made (the stage verifies this when given the initial
adapter, and otherwise uses s·(B_f A_f − B_i A_i) = s·[B_f, −B_i]·[A_f; A_i], rank ≤ 2r).

Exact thin SVD in O((out+in)·r²) (the randomized-SVD literature's "QR then small SVD", e.g. Halko,
Martinsson & Tropp 2011 §5.1, here exact because rank ≤ r): with reduced QR B = Q_b R_b and
Aᵀ = Q_a R_a, ΔW = s·Q_b (R_b R_aᵀ) Q_aᵀ; the SVD of the small core R_b R_aᵀ = U_c Σ V_cᵀ gives
ΔW = (Q_b U_c)(sΣ)(Q_a V_c)ᵀ = U Σ' Vᵀ, singular values and vectors exact to rounding.
r > min(out, in) is fine: the core is min(out, r) × min(in, r).

Metrics per module (σ₁ ≥ σ₂ ≥ … the singular values of ΔW; k its numerical rank, σ_i > tol):
  fro             ‖ΔW‖_F = √Σσ²
  rel_fro         ‖ΔW‖_F / ‖W₀‖_F — size-normalised change (W₀ as trained: NF4-dequantized for QLoRA)
  spectral        ‖ΔW‖₂ = σ₁
  stable_rank     ‖ΔW‖²_F / ‖ΔW‖²₂ = Σσ²/σ₁² ∈ [1, k] (Rudelson & Vershynin 2007)
  effective_rank  exp(H(p)), p_i = σ_i/Σσ, H the Shannon entropy (Roy & Vetterli 2007) ∈ [1, k]
  amplification   ‖ΔW‖_F / ‖Uᵀ W₀ V‖_F (Hu et al. 2021 §7.3, Table 7). Convention: ΔW = U diag(σ) Vᵀ
                  with U ∈ ℝ^{out×k}, V ∈ ℝ^{in×k} the top-k left/right singular vectors (k = min(r,
                  numerical rank)); Uᵀ W₀ V ∈ ℝ^{k×k} is W₀ projected onto ΔW's row and column
                  subspaces (the paper writes UᵀWVᵀ with its V the k×in matrix of right singular
                  vectors as rows — numpy's `vt`). Large: ΔW amplifies directions W₀ barely uses.
For ΔW = 0 the rank-type metrics and the amplification are undefined and reported as NaN.

Subspace similarity (Hu et al. 2021 §7.2, eq. 4): φ(U_i, U_j) = ‖U_iᵀ U_j‖²_F / min(i, j) for the
top-i and top-j singular vectors of two updates; 1 for nested subspaces, 0 for orthogonal ones,
and k/out in expectation for two random k-dim subspaces of ℝ^out (`random_similarity`).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

# Reading adapters lives in locus.core.adapters; these names are re-exported for existing callers.
from locus.core.adapters import (  # noqa: F401
    ADAPTER_FILE,
    ATTENTION_BLOCKS,
    adapter_tensors,
    module_keys,
    module_rank_alpha,
    read_adapter_config,
    read_matrix,
    scaling,
    starts_at_zero,
)
from locus.core.stats import CELL

METRICS = ("fro", "rel_fro", "spectral", "stable_rank", "effective_rank", "amplification")


@dataclass(frozen=True)
class Update:
    """The thin SVD of one module's ΔW = u · diag(sigma) · vt (sigma descending, zeros included)."""

    u: np.ndarray  # (out, m), orthonormal columns
    sigma: np.ndarray  # (m,)
    vt: np.ndarray  # (m, in), orthonormal rows

    @property
    def rank(self) -> int:
        """Numerical rank: σ_i > max(out, in)·eps·σ₁ (numpy.linalg.matrix_rank's tolerance)."""
        if not self.sigma.size or self.sigma[0] == 0:
            return 0
        tol = max(self.u.shape[0], self.vt.shape[1]) * np.finfo(np.float64).eps * self.sigma[0]
        return int(np.count_nonzero(self.sigma > tol))


# ---------------------------------------------------------------- the update and its metrics


@contextmanager
def _one_thread():
    """Run small LAPACK calls on one thread: a multithreaded QR of a tall r-column matrix is 10–100×
    slower than a serial one on a busy CPU (measured: 350 ms vs 2–4 ms for 8192×16)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield torch
    finally:
        torch.set_num_threads(n)


def thin_svd(a: np.ndarray, b: np.ndarray, scale: float = 1.0) -> Update:
    """Exact SVD of scale·B·A (A: m×in, B: out×m) via QR of B and Aᵀ and an SVD of the small core.

    float64 throughout (torch.linalg on CPU, one thread); returns numpy arrays.
    """
    if a.shape[0] != b.shape[1]:
        raise ValueError(f"lora_A {a.shape} and lora_B {b.shape} do not share the rank dimension")
    with _one_thread() as torch:
        at = torch.as_tensor(np.asarray(a)).double()
        bt = torch.as_tensor(np.asarray(b)).double()
        qb, rb = torch.linalg.qr(bt)
        qa, ra = torch.linalg.qr(at.T)
        uc, sigma, vct = torch.linalg.svd(rb @ ra.T, full_matrices=False)
        u, vt = (qb @ uc).numpy(), (vct @ qa.T).numpy()
    return Update(u=u, sigma=abs(scale) * sigma.numpy(), vt=np.sign(scale or 1.0) * vt)


def spectrum_metrics(sigma: np.ndarray) -> dict:
    """fro, spectral, stable_rank and effective_rank from the singular values alone."""
    sigma = np.asarray(sigma, np.float64)
    fro = float(np.sqrt(np.sum(sigma**2)))
    spectral = float(sigma.max()) if sigma.size else 0.0
    if spectral == 0:
        return {"fro": 0.0, "spectral": 0.0, "stable_rank": np.nan, "effective_rank": np.nan}
    p = sigma[sigma > 0] / sigma.sum()
    return {
        "fro": fro,
        "spectral": spectral,
        "stable_rank": fro**2 / spectral**2,
        "effective_rank": float(np.exp(-np.sum(p * np.log(p)))),
    }


def update_metrics(upd: Update, w0: np.ndarray | None = None, r: int | None = None) -> dict:
    """Every metric of METRICS (the W₀-dependent two only when w0 is given) plus `numerical_rank`.

    The amplification projects W₀ on the top-k singular directions, k = min(r, numerical rank).
    W₀ may be float32: ‖W₀‖_F is accumulated in float64, the projection computed in float32.
    """
    out = spectrum_metrics(upd.sigma)
    k = upd.rank if r is None else min(r, upd.rank)
    out["numerical_rank"] = upd.rank
    if w0 is not None:
        if w0.shape != (upd.u.shape[0], upd.vt.shape[1]):
            raise ValueError(f"W₀ has shape {w0.shape}, the update {(upd.u.shape[0], upd.vt.shape[1])}")
        import torch

        w = torch.as_tensor(w0)
        w = w if w.dtype in (torch.float32, torch.float64) else w.double()
        # row norms in W₀'s dtype (pairwise summation), their squares summed in float64: 15× faster
        # than a float64 copy, within 1e-8 relative of it (a float32 total is off by ~1e-3).
        w0_fro = float(torch.linalg.vector_norm(w, dim=1).double().square().sum().sqrt())
        out["w0_fro"] = w0_fro
        out["rel_fro"] = out["fro"] / w0_fro if w0_fro > 0 else np.nan
        if k == 0:
            out["amplification"] = np.nan
        else:
            u, v = (torch.as_tensor(np.ascontiguousarray(x)).to(w.dtype) for x in (upd.u[:, :k].T, upd.vt[:k].T))
            norm = float(torch.linalg.matrix_norm((u @ w) @ v).double())
            out["amplification"] = out["fro"] / norm if norm > 0 else np.inf
    return out


def subspace_similarity(u_i: np.ndarray, u_j: np.ndarray, i: int | None = None, j: int | None = None) -> float:
    """φ(U_i, U_j, i, j) = ‖U_i[:, :i]ᵀ U_j[:, :j]‖²_F / min(i, j), columns orthonormal (LoRA eq. 4)."""
    i = u_i.shape[1] if i is None else i
    j = u_j.shape[1] if j is None else j
    if not (0 < i <= u_i.shape[1] and 0 < j <= u_j.shape[1]):
        raise ValueError(f"i={i}, j={j} outside the {u_i.shape[1]} and {u_j.shape[1]} available directions")
    return float(np.sum((u_i[:, :i].T @ u_j[:, :j]) ** 2) / min(i, j))


def update_similarity(x: Update, y: Update, k: int, side: str = "left") -> float:
    """φ between the top-k left (column-space) or right (row-space) singular vectors of two updates.

    k is capped at both updates' numerical ranks (beyond it the vectors are arbitrary); NaN if 0.
    """
    k = min(k, x.rank, y.rank)
    if k == 0:
        return np.nan
    if side == "left":
        return subspace_similarity(x.u, y.u, k, k)
    if side == "right":
        return subspace_similarity(x.vt.T, y.vt.T, k, k)
    raise ValueError(f"side must be 'left' or 'right', not {side!r}")


def random_similarity(k: int, dim: int) -> float:
    """E φ for two independent uniformly random k-dim subspaces of ℝ^dim: k/dim."""
    return k / dim


# ---------------------------------------------------------------- the updates of a PEFT adapter


def iter_updates(final: str | Path, init: str | Path | None = None) -> Iterator[tuple[str, dict, Update]]:
    """(module path, {layer, block, module, rank, scaling, init_zero}, Update) per module, streamed.

    With `init`, ΔW = s·(B_f A_f − B_i A_i); when B_i = 0 (PEFT's default init) that is s·B_f A_f.
    Without it the adapter must have been initialised with lora_B = 0 (adapters.starts_at_zero).
    Tensors that are not per-layer LoRA matrices are skipped with a note (adapters.adapter_tensors).
    """
    from safetensors import safe_open

    config = read_adapter_config(final, kinds=("lora",))
    if init is None and not starts_at_zero(config):
        raise ValueError(
            f"{Path(final) / 'adapter_config.json'}: init_lora_weights="
            f"{config.get('init_lora_weights')!r} does not start from lora_B = 0, so the update "
            f"is not s·B·A of the saved adapter; pass the adapter saved before training as the initial one"
        )
    modules, skipped = adapter_tensors(final)
    if skipped:
        print(
            f"note: {final}: {len(skipped)} tensors are not per-layer LoRA matrices and are not analysed, "
            f"e.g. {next(iter(skipped))} ({next(iter(skipped.values()))})"
        )
    if init is not None and set(module_keys(init)) != set(modules):
        raise ValueError(f"{init} and {final} adapt different modules")
    with ExitStack() as stack:
        ff = stack.enter_context(safe_open(Path(final) / ADAPTER_FILE, "pt"))
        fi = stack.enter_context(safe_open(Path(init) / ADAPTER_FILE, "pt")) if init is not None else None
        for module_path, entry in modules.items():
            a, b = read_matrix(ff, entry["A"]), read_matrix(ff, entry["B"])
            init_zero = True
            if fi is not None:
                a0, b0 = read_matrix(fi, entry["A"]), read_matrix(fi, entry["B"])
                init_zero = not np.any(b0)
                if not init_zero:
                    a, b = np.concatenate([a, a0]), np.concatenate([b, -b0.astype(np.float64)], axis=1)
            s = scaling(config, module_path)
            r, _ = module_rank_alpha(config, module_path)
            info = {k: entry[k] for k in ("layer", "block", "module")} | {
                "rank": r,
                "scaling": s,
                "init_zero": init_zero,
            }
            yield module_path, info, thin_svd(a, b, s)


def layer_effective(modules: pd.DataFrame) -> pd.DataFrame:
    """Per (domain, lr, seed, layer) from per-module rows: the layer's stacked adapted weights.

    fro = √Σ_m‖ΔW_m‖²_F, rel_fro = √Σ_m‖ΔW_m‖²_F / √Σ_m‖W₀_m‖²_F (big and small matrices weigh
    by size), attention_share = attention's part of Σ‖ΔW_m‖²_F, attention_w0_share = its part of
    Σ‖W₀_m‖²_F (the share it would have if change followed weight mass).
    """
    m = modules.copy()
    w0 = m["w0_fro"] if "w0_fro" in m else m["fro"] / m["rel_fro"]
    attn = m["block"] == "attention"
    m = m.assign(f2=m["fro"] ** 2, w2=w0**2, af2=np.where(attn, m["fro"] ** 2, 0.0), aw2=np.where(attn, w0**2, 0.0))
    g = m.groupby(CELL + ["layer"], sort=True)[["f2", "w2", "af2", "aw2"]].sum()
    out = pd.DataFrame(
        {
            "fro": np.sqrt(g.f2),
            "rel_fro": np.sqrt(g.f2 / g.w2),
            "attention_share": g.af2 / g.f2,
            "attention_w0_share": g.aw2 / g.w2,
        }
    )
    return out.reset_index()
