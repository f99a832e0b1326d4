"""A cell's examples: its domain's train and eval splits, encoded within their budgets, checked.

Both training arms and every stage that reads an eval split (evaluate, represent) encode it here,
exactly as training does (locus.training.sft_data: prompt masked, over-length handling).
"""

from __future__ import annotations

from pathlib import Path

from datasets import Dataset

from locus.training.modeling import load_tokenizer, seed_everything
from locus.training.records import DataError, read_records
from locus.training.sft_data import IGNORE_INDEX, encode_all
from locus.training.splits import shared_instructions


def load_split(tokenizer, path: Path, params, budget: str | None = None) -> tuple[Dataset, dict]:
    """Encode a prepared split; `budget` names the data.max_*_examples key that caps it. Examples
    are taken in the file's (ranked) order until the budget is filled after over-length handling,
    so a dropped example is replaced; a split that cannot fill it fails (data.short_budget)."""
    t, limit = params.training, getattr(params.data, budget) if budget else None
    records = read_records(path)
    enc = encode_all(tokenizer, records, t.max_seq_length, t.overlength, limit=limit)
    if not enc.examples:
        raise DataError(f"{path}: no example left after applying max_seq_length={t.max_seq_length}")
    short = limit is not None and len(enc.examples) < limit
    if short and params.data.short_budget == "fail":
        raise DataError(
            f"{path}: only {len(enc.examples)} usable examples for data.{budget}={limit} "
            f"({enc.n_dropped} dropped by training.max_seq_length={t.max_seq_length}, "
            f"overlength={t.overlength}); lower data.{budget} or set data.short_budget: train_fewer"
        )
    if enc.n_truncated or enc.n_dropped:
        examined = len(enc.examples) + enc.n_dropped
        print(
            f"{path}: {enc.n_truncated} truncated, {enc.n_dropped} dropped of {examined} examples "
            f"(training.max_seq_length={t.max_seq_length}, overlength={t.overlength})"
            + (f"; {len(enc.examples)} used for data.{budget}={limit}" if limit else "")
        )
    counts = {
        "examples": len(enc.examples),
        "budget": limit,
        "budget_short": short,
        "truncated": enc.n_truncated,
        "dropped": enc.n_dropped,
        "tokens": sum(len(e["input_ids"]) for e in enc.examples),
        "response_tokens": sum(sum(lab != IGNORE_INDEX for lab in e["labels"]) for e in enc.examples),
    }
    return Dataset.from_list(enc.examples), counts


def start_run(params, model_dir: str, data_dir: str, lr: float, seed: int):
    """What both arms do before building a model: check the LR, seed every RNG (seed_everything),
    load the tokenizer and the cell's data. Returns (tokenizer, data)."""
    if not 0 < lr <= 1:
        raise ValueError(f"--lr {lr} is outside (0, 1]")
    seed_everything(seed, params.training.deterministic)
    tokenizer = load_tokenizer(model_dir)
    return tokenizer, load_data(tokenizer, data_dir, params)


def load_data(tokenizer, data_dir: str, params) -> tuple[tuple[Dataset, dict], tuple[Dataset, dict]]:
    """(train, eval) datasets with their counts from a prepared domain directory, checked."""
    train_path, eval_path = Path(data_dir) / "train.jsonl", Path(data_dir) / "eval.jsonl"
    # prepare-data never splits an instruction across train and eval; a hand-made --data dir might.
    shared = shared_instructions(read_records(train_path), read_records(eval_path))
    if shared:
        raise DataError(f"{eval_path}: {len(shared)} instructions also in {train_path}, e.g. {shared[0][:80]!r}")
    train = load_split(tokenizer, train_path, params, "max_train_examples")
    if len(train[0]) < params.training.per_device_batch_size:
        raise DataError(
            f"{train_path}: {len(train[0])} examples, fewer than one batch "
            f"(training.per_device_batch_size={params.training.per_device_batch_size})"
        )
    return train, load_split(tokenizer, eval_path, params, "max_eval_examples")
