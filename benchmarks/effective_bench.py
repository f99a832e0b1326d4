"""Time the exact QR + r×r SVD path of locus.core.effective against dense SVD of ΔW, at Llama-3.2-3B scale.

28 layers × {q 3072×3072, k/v 1024×3072, o 3072×3072, up 8192×3072, down 3072×8192}, r = 16, random
A, B and W₀ (one W₀ per shape, reused: the cost does not depend on the values). Columns:
  spectrum   thin_svd (QR of B and Aᵀ, SVD of the r×r core) + spectrum metrics, all 168 modules
  with W₀    the same plus ‖W₀‖_F and the amplification projection Uᵀ W₀ V (float32 W₀, as the stage)
  dense      torch.linalg.svdvals of the dense float32 ΔW = s·B·A, timed on `--dense-layers` layers
             (default 1) and extrapolated ×28/N — dense for all 168 modules takes far longer.
Usage: python benchmarks/effective_bench.py [--dense-layers N] [--threads T]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from locus.core.effective import spectrum_metrics, thin_svd, update_metrics

LAYERS, R, S = 28, 16, 2.0
SHAPES = {
    "q_proj": (3072, 3072),
    "k_proj": (1024, 3072),
    "v_proj": (1024, 3072),
    "o_proj": (3072, 3072),
    "up_proj": (8192, 3072),
    "down_proj": (3072, 8192),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dense-layers", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    adapters = {
        (layer, m): (
            (rng.standard_normal((R, i), np.float32) / np.sqrt(i)).astype(np.float32),
            (rng.standard_normal((o, R), np.float32) * 1e-3).astype(np.float32),
        )
        for layer in range(LAYERS)
        for m, (o, i) in SHAPES.items()
    }
    w0 = {m: (rng.standard_normal(shape, np.float32) * 0.02).astype(np.float32) for m, shape in SHAPES.items()}
    rows = {m: {"spectrum": 0.0, "with W₀": 0.0, "dense": 0.0} for m in SHAPES}
    max_err = 0.0
    for (layer, m), (a, b) in adapters.items():
        t = time.perf_counter()
        spectrum_metrics(thin_svd(a, b, S).sigma)
        rows[m]["spectrum"] += time.perf_counter() - t
        t = time.perf_counter()
        update_metrics(thin_svd(a, b, S), w0[m], r=R)
        rows[m]["with W₀"] += time.perf_counter() - t
        if layer < args.dense_layers:
            t = time.perf_counter()
            dense = torch.linalg.svdvals(S * torch.from_numpy(b) @ torch.from_numpy(a))
            rows[m]["dense"] += (time.perf_counter() - t) * LAYERS / args.dense_layers
            ours = thin_svd(a, b, S).sigma
            max_err = max(max_err, float(np.abs(dense[:R].double().numpy() - ours).max() / ours[0]))
    print(
        f"Llama-3.2-3B adapter set: {LAYERS} layers × {len(SHAPES)} modules, r = {R}; torch threads "
        f"{torch.get_num_threads()}; dense timed on {args.dense_layers} layer(s), extrapolated ×{LAYERS / args.dense_layers:g}"
    )
    print(f"{'module':<10}{'shape':>12}{'spectrum s':>12}{'with W₀ s':>12}{'dense s':>12}{'dense/spectrum':>16}")
    tot = {k: 0.0 for k in ("spectrum", "with W₀", "dense")}
    for m, r in rows.items():
        o, i = SHAPES[m]
        print(
            f"{m:<10}{f'{o}×{i}':>12}{r['spectrum']:>12.3f}{r['with W₀']:>12.3f}{r['dense']:>12.1f}{r['dense'] / r['spectrum']:>16.0f}"
        )
        for k in tot:
            tot[k] += r[k]
    print(
        f"{'total':<22}{tot['spectrum']:>12.3f}{tot['with W₀']:>12.3f}{tot['dense']:>12.1f}{tot['dense'] / tot['spectrum']:>16.0f}"
    )
    print(f"max |σ_dense − σ_QR| / σ₁ over the dense-timed modules: {max_err:.1e} (dense in float32)")


if __name__ == "__main__":
    main()
