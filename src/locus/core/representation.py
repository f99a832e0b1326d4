"""Linear CKA: how similar two sets of activations of the same inputs are.

For activation matrices X (n × d₁) and Y (n × d₂) of the same n inputs (here: tokens), with every
column centred, linear centred kernel alignment is (Kornblith et al. 2019, "Similarity of Neural
Network Representations Revisited", eq. 5, linear kernel):

    CKA(X, Y) = ‖YᵀX‖²_F / (‖XᵀX‖_F · ‖YᵀY‖_F)

1 when Y is X up to a rotation and an isotropic scaling, 0 when no linear combination of the
features of one correlates with the other's. It is invariant to orthogonal transforms and to
scale, so it compares what a layer represents, not the size of its activations. Locus reports the
representation change of a layer as 1 − CKA(h_base, h_tuned): 0 = the fine-tuned layer computes
the same representation as the base.
"""

from __future__ import annotations

import torch


def linear_cka(x: torch.Tensor, y: torch.Tensor) -> float:
    """Linear CKA of two activation matrices with the same rows (float64 inside); NaN when either
    is constant over the rows (its centred Gram matrix is 0)."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"activations of shape {tuple(x.shape)} and {tuple(y.shape)}: need n × d with the same n")
    x, y = x.double(), y.double()
    x, y = x - x.mean(0, keepdim=True), y - y.mean(0, keepdim=True)
    # Feature-space form: d × d products, cheaper than n × n Grams when tokens outnumber features.
    cross = torch.linalg.matrix_norm(y.T @ x) ** 2
    norms = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(cross / norms) if norms > 0 else float("nan")
