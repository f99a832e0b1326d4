"""After how many optimizer steps does a layer map repeat across seeds? (sizes presets/study.yaml)

Reads the learning trajectories of a finished run (training.snapshot_every > 0, trajectory.domains,
≥ 2 seeds: `snakemake --cores 2 --config preset=stability -- results/stability/report.html`) and
prints, per metric, Spearman ρ of the layer ranking between seeds at every snapshot step
(locus.analysis.trajectory.seed_agreement), plus the first step from which it stays ≥ the threshold.

  python benchmarks/seed_stability_steps.py --preset stability [--threshold 0.8]
Writes benchmarks/results/seed-stability-{preset}.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from locus import params as params_module
from locus.analysis.trajectory import formed_step, read_trajectories, seed_agreement
from locus.core.stats import LABELS

ROOT = Path(__file__).resolve().parents[1]
METRICS = ["mean_abs", "rel_fro", "fro", "var_abs", "attention_share"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--preset", default="stability")
    parser.add_argument("--threshold", type=float, default=0.8)
    args = parser.parse_args()
    params = params_module.load(args.params, args.preset)
    table = read_trajectories(params)
    result = {"preset": args.preset, "threshold": args.threshold, "metrics": {}}
    for metric in METRICS:
        rho = seed_agreement(table, metric)
        wide = rho.pivot_table(index="step", columns=["domain", "lr"], values="rho")
        print(f"\n{LABELS.get(metric, metric)}: seed-to-seed Spearman ρ of the layer ranking by step")
        print(wide.round(2).to_string())
        stable = {
            f"{d}@{lr:g}": formed_step(g[["step", "rho"]], args.threshold)
            for (d, lr), g in rho.groupby(["domain", "lr"])
        }
        print(f"stays ≥ {args.threshold} from step: {stable}")
        result["metrics"][metric] = {"by_step": rho.to_dict(orient="records"), "stable_from": stable}
    out = ROOT / "benchmarks" / "results" / f"seed-stability-{args.preset}.json"
    out.write_text(json.dumps(result, indent=2, default=float) + "\n")
    print(f"\n-> {out}")


if __name__ == "__main__":
    main()
