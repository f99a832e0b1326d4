"""The full fine-tuning arm: metrics of a dense ΔW and its comparison with LoRA's layer map.

The seed claims LoRA's per-layer change shows "which layers would have been most modified during a
full fine-tuning run". Full FT trains every weight on the same data and budget; for each module
LoRA adapts, ΔW = W_final − W₀ is stored densely (stages/train_full.py) and measured here with the
same definitions as the LoRA update (locus.core.effective): fro ‖ΔW‖_F, rel_fro ‖ΔW‖_F/‖W₀‖_F (W₀ the
fp32 weight full FT started from), spectral σ₁, stable rank Σσ²/σ₁², effective (entropy) rank
exp H(σ/Σσ) — from a dense SVD, fine at 576×1536 — plus
  rank90    the smallest k with Σ_{i≤k}σ_i² ≥ 0.9·Σσ²: the rank needed to explain 90% of ΔW's
            energy, the measure Biderman et al. 2024 ("LoRA Learns Less and Forgets Less", §5)
            find 10–100× above typical LoRA ranks for full FT
  mean_abs  mean |ΔW| over the matrix's entries — the seed's headline statistic, applied to ΔW.
Per layer, locus.core.effective.layer_effective stacks the modules (the same layer definition as LoRA).

Comparison, like for like: Spearman's ρ between a LoRA layer profile and full FT's profile of the
*same* metric (rel_fro with rel_fro; the seed's mean |Δ| of the trained parameters with full FT's
mean |ΔW|, its trained parameters being the weights), same domain and seed, for every (LoRA LR,
full-FT LR); then mean ± s.d. over seeds. Under "no association", ρ over n layers has s.d. ≈
1/√(n−1), so |ρ| > 1.96/√(n−1) is significant at p ≈ 0.05 (0.36 for 30 layers). Each LR pair gets
its own verdict (pairs that disagree are never averaged into one), borderline where the seeds'
s.d. reaches across a cutoff.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from locus.core.effective import spectrum_metrics
from locus.core.ranking import critical_rho, spearman
from locus.core.stats import CELL
from locus.params import lr_label

TRACKS, LORA_METRICS = 0.7, ("rel_fro", "mean_abs")


def singular_values(d: np.ndarray) -> np.ndarray:
    """σ of a dense float64 matrix, descending: on the job's GPU when there is one (a 3B model's
    196 dense SVDs take most of an hour on one CPU core), else with LAPACK on the job's threads."""
    import torch

    from locus.training.modeling import model_device

    return torch.linalg.svdvals(torch.from_numpy(d).to(model_device())).cpu().numpy()


def dense_metrics(delta: np.ndarray, w0: np.ndarray) -> dict:
    """Every metric of the module docstring for one dense ΔW (float64 SVD) and its W₀.

    numerical_rank counts σ_i > max(out, in)·eps₃₂·σ₁: ΔW is a difference of float32 weights, so
    singular values below float32 rounding of W are noise."""
    d = np.asarray(delta, np.float64)
    if d.shape != w0.shape:
        raise ValueError(f"ΔW has shape {d.shape}, W₀ {w0.shape}")
    sigma = singular_values(d)
    out = spectrum_metrics(sigma)
    w0_fro = float(np.linalg.norm(np.asarray(w0, np.float64)))
    energy = np.cumsum(sigma**2)
    out.update(
        numerical_rank=int(np.count_nonzero(sigma > max(d.shape) * np.finfo(np.float32).eps * sigma[0]))
        if out["fro"]
        else 0,
        rank90=int(np.searchsorted(energy, 0.9 * energy[-1]) + 1) if out["fro"] else 0,
        w0_fro=w0_fro,
        rel_fro=out["fro"] / w0_fro if w0_fro else np.nan,
        mean_abs=float(np.abs(d).mean()),
    )
    return out


def layer_table(modules: pd.DataFrame) -> pd.DataFrame:
    """Per (domain, lr, seed, layer): layer_effective's stacked fro/rel_fro/attention share, plus the
    equal-weight mean over the layer's modules of mean |ΔW| and of the effective rank."""
    from locus.core.effective import layer_effective

    extra = modules.groupby(CELL + ["layer"])[["mean_abs", "effective_rank", "rank90"]].mean().reset_index()
    return layer_effective(modules).merge(extra, on=CELL + ["layer"], validate="one_to_one")


# ---------------------------------------------------------------- LoRA vs full FT


def rho_table(lora_layers: pd.DataFrame, ft_layers: pd.DataFrame) -> pd.DataFrame:
    """One row per (domain, LoRA LR, full-FT LR, seed, LoRA metric): ρ with full FT's profile of the same metric.

    LoRA and full FT are paired by domain and seed (same data, same data order)."""
    rows = []
    for (domain, ft_lr, seed), ft in ft_layers.groupby(CELL):
        ref = ft.set_index("layer").sort_index()
        lora = lora_layers[(lora_layers.domain == domain) & (lora_layers.seed == seed)]
        if lora.empty:
            raise ValueError(f"no LoRA layer profile for domain {domain}, seed {seed} to compare full FT with")
        for lora_lr, cell in lora.groupby("lr"):
            prof = cell.set_index("layer").sort_index()
            if list(prof.index) != list(ref.index):
                raise ValueError(f"{domain}, seed {seed}: LoRA and full FT cover different layers")
            for metric in LORA_METRICS:
                rows.append(
                    {
                        "domain": domain,
                        "lora_lr": lora_lr,
                        "ft_lr": ft_lr,
                        "seed": seed,
                        "lora_metric": metric,
                        "rho": spearman(prof[metric], ref[metric]),
                        "n_layers": len(ref),
                    }
                )
    return pd.DataFrame(rows)


def rho_summary(rho: pd.DataFrame) -> pd.DataFrame:
    """Mean, s.d. (ddof 1; NaN with one seed) and n seeds of ρ per (domain, LoRA LR, FT LR, metric)."""
    g = rho.groupby(["domain", "lora_lr", "ft_lr", "lora_metric"])
    return g.rho.agg(mean="mean", sd="std", n="count").reset_index().merge(g.n_layers.first().reset_index())


def _pm(mean: float, sd: float, n: int) -> str:
    return f"ρ = {mean:.2f} ± {sd:.2f} (n = {n} seeds)" if n > 1 else f"ρ = {mean:.2f} (n = 1 seed, no spread)"


def verdict(mean: float, n_layers: int, sd: float = float("nan")) -> str:
    """Whether a mean ρ says LoRA's map tracks full FT's; ', borderline' when the seeds' s.d.
    reaches across the cutoff nearest the mean (another seed could change the verdict)."""
    cutoffs = (TRACKS, critical_rho(n_layers))
    words = (
        "tracks full FT"
        if mean >= TRACKS
        else "tracks full FT only weakly"
        if mean > cutoffs[1]
        else "does not track full FT"
    )
    near = min(abs(mean - c) for c in cutoffs)
    return words + (", borderline" if sd == sd and near < sd else "")


def describe(summary: pd.DataFrame, metric: str) -> str:
    """The computed verdict for one metric, compared like for like (LoRA's and full FT's profile of
    that metric), per domain × LoRA LR × full-FT LR — each pair its own verdict, never an average."""
    from locus.core.stats import LABELS

    s = summary[summary.lora_metric == metric]
    n_layers, n = int(s.n_layers.iloc[0]), int(s.n.max())
    head = (
        f"{LABELS[metric]}, LoRA's layer profile vs full FT's ({n} seed{'s' if n > 1 else ''} per pair; "
        f"|ρ| > {critical_rho(n_layers):.2f} is significant for {n_layers} layers, ≥ {TRACKS} 'tracks'): "
    )
    parts = [
        f"{r.domain} LoRA LR {lr_label(r.lora_lr)} / full-FT LR {lr_label(r.ft_lr)}: {_pm(r.mean, r.sd, r.n)}, "
        f"{verdict(r.mean, n_layers, r.sd)}"
        for r in s.itertuples()
    ]
    return head + "; ".join(parts) + "."


def describe_rank(ft_modules: pd.DataFrame, lora_modules: pd.DataFrame, lora_r: int) -> str:
    """Full-FT ΔW's effective and rank-90% vs LoRA's (same domains and seeds), module means."""
    keys = ft_modules[["domain", "seed"]].drop_duplicates()
    lora = lora_modules.merge(keys, on=["domain", "seed"])
    ft_eff, ft_r90 = ft_modules.effective_rank.mean(), ft_modules.rank90.mean()
    lora_eff = lora.effective_rank.mean()
    return (
        f"Full-FT ΔW has mean effective (entropy) rank {ft_eff:.0f} and needs rank {ft_r90:.0f} for 90% of its "
        f"energy (mean over {len(ft_modules)} module updates; numerical rank up to {int(ft_modules.numerical_rank.max())}); "
        f"LoRA's ΔW has effective rank {lora_eff:.1f} at r = {lora_r}: full FT's is {ft_eff / lora_eff:.0f}× "
        f"LoRA's effective rank and its rank-90% is {ft_r90 / lora_r:.1f}× r "
        f"(Biderman et al. 2024 report 10–100× LoRA's rank for full FT)."
    )
