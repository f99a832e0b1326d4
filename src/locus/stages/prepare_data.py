"""Stage: one domain's raw file -> deduplicated, deterministically split train/eval JSONL.

The split is decided per example by a salted hash of its normalised instruction, *before* any
subsetting or tokenisation, so it never depends on file order, on other examples, or on the
budget; identical instructions always land on the same side, and overlap is refused.
"""

from __future__ import annotations

import statistics
from pathlib import Path

from locus import io
from locus.params import name_argument
from locus.training.records import DataError, find_raw, read_records
from locus.training.splits import deduplicate, ranked, split


def length_stats(records: list[dict]) -> dict:
    out = {}
    for field in ("instruction", "response"):
        lengths = sorted(len(r[field]) for r in records) or [0]
        out[field] = {"min": lengths[0], "median": statistics.median(lengths), "max": lengths[-1]}
    return out


def add_arguments(parser) -> None:
    parser.add_argument("--domain", required=True, type=name_argument)
    parser.add_argument("--out", required=True, help="directory for train.jsonl, eval.jsonl, stats.json")


def run(args, params) -> None:
    data = params.data
    raw = find_raw(data.raw_dir, args.domain)
    records = read_records(raw)
    unique = deduplicate(records)
    train, evals = split(unique, data.eval_fraction, data.split_salt)
    if not evals:
        raise DataError(f"{raw}: eval split is empty ({len(unique)} examples, eval_fraction {data.eval_fraction})")
    # The whole split is written, ranked: the budget (data.max_*_examples) is applied by the train
    # stage after tokenisation, so an over-length example that is dropped there is replaced.
    train_used, eval_used = ranked(train, data.split_salt), ranked(evals, data.split_salt)
    stats = {
        "domain": args.domain,
        "raw_file": str(raw),
        "raw_sha256": io.sha256_file(raw),
        "n_raw": len(records),
        "n_duplicates_removed": len(records) - len(unique),
        "n_train_split": len(train),
        "n_eval_split": len(evals),
        "n_train": min(len(train), data.max_train_examples or len(train)),  # the budget asked for
        "n_eval": min(len(evals), data.max_eval_examples or len(evals)),
        "chars": length_stats(train_used[: data.max_train_examples] + eval_used[: data.max_eval_examples]),
    }
    out = Path(args.out)
    with io.atomic_path(out, is_dir=True) as tmp:
        io.write_jsonl(tmp / "train.jsonl", train_used)
        io.write_jsonl(tmp / "eval.jsonl", eval_used)
        io.write_json(tmp / "stats.json", stats)
    print(
        f"{args.domain}: {len(records)} raw, {stats['n_duplicates_removed']} duplicates, "
        f"train {stats['n_train']}/{len(train)}, eval {stats['n_eval']}/{len(evals)} (budgets; the whole "
        f"split is written in rank order) -> {out}"
    )
