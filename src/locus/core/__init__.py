"""Pure math on tensors and tables: adapter keys, seed statistics, the effective update ΔW, subspace similarity, ranking. No model loading, no grid."""
