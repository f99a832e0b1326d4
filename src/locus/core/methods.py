"""The effective update of the PEFT methods beyond plain LoRA, each as PEFT computes it.

Weight-space methods change W₀ into a merged weight W' (PEFT's `merge_and_unload`); the update is
ΔW = W'(final adapter) − W'(initial adapter), formed densely in float64 (one matrix at a time) and
measured by its exact SVD like LoRA's (locus.core.effective):

  DoRA (Liu et al. 2024, "DoRA: Weight-Decomposed Low-Rank Adaptation", eq. 5; peft
  tuners/lora/variants.py DoraLinearVariant.merge): W' = diag(m / ‖W₀ + s·B·A‖_row) (W₀ + s·B·A),
  the norm taken per output row (PEFT's `weight.norm(dim=1)`), m the trained magnitude vector.
  PEFT sets m = ‖W₀‖_row at init, so W'(init) = W₀ when the initial magnitudes were taken from
  this W₀ (Locus takes them from the unquantized base, hence the difference of two merges).

  IA³ (Liu et al. 2022, "Few-Shot Parameter-Efficient Fine-Tuning is Better and Cheaper than
  In-Context Learning", §3.3; peft tuners/ia3/layer.py Linear.merge): W' = W₀ ⊙ l, the saved
  vector of shape (out, 1) scaling each output row (attention targets: diag(l)·W₀) or (1, in)
  scaling each input column (feed-forward targets: W₀·diag(l)). l = 1 at init.

Prefix tuning (Li & Liang 2021, "Prefix-Tuning: Optimizing Continuous Prompts for Generation") adds
rather than changes weights: T trained key and value vectors per layer, prepended to every
attention. PEFT stores them as one table `prompt_embeddings` of shape (T, L·2·kv_heads·head_dim),
viewed as (T, L·2, kv_heads·head_dim) with row 2ℓ the keys and 2ℓ+1 the values of layer ℓ (peft
PeftModel.get_prompt). `prefix_blocks` splits it so; what training changed per layer is then
ΔP = P(final) − P(init), a T × (kv_heads·head_dim) matrix for the keys and one for the values.
"""

from __future__ import annotations

import numpy as np

from locus.core.effective import Update, _one_thread


def dora_weight(w0: np.ndarray, a: np.ndarray, b: np.ndarray, scale: float, magnitude: np.ndarray) -> np.ndarray:
    """DoRA's merged weight diag(m / ‖W₀ + s·B·A‖_row)(W₀ + s·B·A), float64."""
    directed = np.asarray(w0, np.float64) + scale * (np.asarray(b, np.float64) @ np.asarray(a, np.float64))
    norm = np.linalg.norm(directed, axis=1, keepdims=True)
    return np.asarray(magnitude, np.float64).reshape(-1, 1) / norm * directed


def ia3_weight(w0: np.ndarray, scaling: np.ndarray) -> np.ndarray:
    """IA³'s merged weight W₀ ⊙ l (l of shape (out, 1) or (1, in), as PEFT saves it), float64."""
    scaling = np.asarray(scaling, np.float64)
    if scaling.shape not in ((w0.shape[0], 1), (1, w0.shape[1])):
        raise ValueError(f"IA³ vector of shape {scaling.shape} does not scale a {w0.shape} weight's rows or columns")
    return np.asarray(w0, np.float64) * scaling


def dense_update(delta: np.ndarray) -> Update:
    """The exact thin SVD of a dense ΔW (float64, one thread)."""
    with _one_thread() as torch:
        u, sigma, vt = torch.linalg.svd(torch.as_tensor(np.asarray(delta, np.float64)), full_matrices=False)
    return Update(u=u.numpy(), sigma=sigma.numpy(), vt=vt.numpy())


def prefix_blocks(table: np.ndarray, n_layers: int) -> dict[tuple[int, str], np.ndarray]:
    """{(layer, "prefix_key" | "prefix_value"): the T × (kv_heads·head_dim) block} of PEFT's
    prefix table (T, L·2·kv_heads·head_dim)."""
    table = np.asarray(table)
    if table.ndim != 2 or table.shape[1] % (2 * n_layers):
        raise ValueError(
            f"a prefix table of shape {table.shape} does not split into {n_layers} layers' keys and values"
        )
    blocks = table.reshape(table.shape[0], 2 * n_layers, -1)
    return {(j // 2, ("prefix_key", "prefix_value")[j % 2]): blocks[:, j, :] for j in range(2 * n_layers)}
