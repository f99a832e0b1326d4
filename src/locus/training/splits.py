"""Deduplication and the deterministic train/eval split of one domain's records.

The split is decided per example by a salted hash of its normalised instruction, *before* any
subsetting or tokenisation, so it never depends on file order, on other examples, or on the
budget; identical instructions always land on the same side, and overlap is refused.
"""

from __future__ import annotations

import hashlib

from locus.training.records import DataError


def instruction_key(text: str) -> str:
    """Case- and whitespace-insensitive identity of an instruction."""
    return " ".join(text.casefold().split())


def split_score(record: dict, salt: str) -> float:
    """A uniform number in [0, 1) fixed by the instruction (and the salt)."""
    digest = hashlib.sha256(f"{salt}\0{instruction_key(record['instruction'])}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def deduplicate(records: list[dict]) -> list[dict]:
    """Drop exact (instruction, response) repeats, keeping the first."""
    seen, out = set(), []
    for r in records:
        key = (r["instruction"], r["response"])
        if key not in seen:
            seen.add(key)
            out.append(r)
    return out


def shared_instructions(train: list[dict], evals: list[dict]) -> list[str]:
    """Instructions (by instruction_key) present in both splits, sorted; must be empty."""
    return sorted(
        {instruction_key(r["instruction"]) for r in train} & {instruction_key(r["instruction"]) for r in evals}
    )


def split(records: list[dict], eval_fraction: float, salt: str) -> tuple[list[dict], list[dict]]:
    train, evals = [], []
    for r in records:
        (evals if split_score(r, salt) < eval_fraction else train).append(r)
    overlap = shared_instructions(train, evals)
    if overlap:
        raise DataError(f"{len(overlap)} instructions are in both train and eval, e.g. {overlap[0][:80]!r}")
    return train, evals


def ranked(records: list[dict], salt: str) -> list[dict]:
    """Records in a deterministic pseudo-random order (their hash scores): the order in which the
    train stage takes its data.max_*_examples, so a budget is a prefix of this list."""
    return sorted(records, key=lambda r: split_score(r, salt + "/subset"))
