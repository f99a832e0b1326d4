"""Stage: rank one domain's layers by the layer map and pick the arms' layer sets → arms.json.

Reads the aggregated layer table (layers.parquet of stages/aggregate.py: one row per domain, lr,
seed, layer), ranks the layers by `validation.metric` averaged over the grid's seeds at
`validation.learning_rate`, and writes the top-k set, the bottom-k set when asked, R random k-sets
(seeded numpy Generator, see locus.analysis.validation.draw_random_sets) and the all-layer list. The arm
training stages read their layer list from this file (`locus init-adapter --layers-from`).
"""

from __future__ import annotations

from locus import io
from locus.analysis.validation import RANDOM_SETS, arm_layers, rank_layers
from locus.params import name_argument


def add_arguments(parser) -> None:
    parser.add_argument("--layers", required=True, help="layers.parquet of `locus aggregate`")
    parser.add_argument("--domain", required=True, type=name_argument, help="a domain of validation.domains")
    parser.add_argument("--out", required=True, help="arms.json to write")


def run(args, params) -> None:
    v = params.validation
    if args.domain not in v.domains:
        raise ValueError(f"--domain {args.domain!r} is not in validation.domains {v.domains}")
    table = io.read_parquet(args.layers)
    if v.metric not in table.columns:
        raise ValueError(f"{args.layers}: no column {v.metric!r} (validation.metric)")
    ranking = rank_layers(table, args.domain, v.learning_rate, v.metric)
    arms = arm_layers(ranking, v.k, v.arms, v.draw_seed, args.domain)
    io.write_json(
        args.out,
        {
            "domain": args.domain,
            "metric": v.metric,
            "learning_rate": v.learning_rate,
            "k": v.k,
            "draw_seed": v.draw_seed,
            "grid_seeds_averaged": int(ranking["n_seeds"].min()),
            "ranking": [{"layer": int(r.layer), "value": float(r.value)} for r in ranking.itertuples()],
            "arms": arms,
            "random_sets": RANDOM_SETS,
        },
    )
    print(f"{args.domain}: top-{v.k} layers by {v.metric} {arms['top']} -> {args.out}")
