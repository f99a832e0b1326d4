"""Reading instruction-response datasets in the common shapes people keep them in.

Accepted: JSONL (one object per line) or a JSON array, with fields
`instruction`/`response` (optionally `input`, as in Alpaca; `output` is accepted for `response`),
`prompt`/`completion`, `question`/`answer`, or chat `messages` (one user turn and one assistant
turn, optional system turn). Errors name the file and line.
"""

from __future__ import annotations

import json
from pathlib import Path

FIELD_PAIRS = [("instruction", "response"), ("instruction", "output"), ("prompt", "completion"), ("question", "answer")]


class DataError(ValueError):
    """A dataset cannot be read; the message names file and line."""


def _from_messages(messages, where: str) -> tuple[str, str]:
    if not isinstance(messages, list):
        raise DataError(f"{where}: 'messages' must be a list of {{role, content}} objects")
    turns = [m for m in messages if isinstance(m, dict) and m.get("role") != "system"]
    roles = [m.get("role") for m in turns]
    if roles != ["user", "assistant"]:
        raise DataError(f"{where}: 'messages' must hold one user then one assistant turn, got roles {roles}")
    return turns[0].get("content"), turns[1].get("content")


def normalise(obj, where: str) -> dict:
    """One raw record -> {'instruction', 'response'} (plus any `source`/`licence` it carries)."""
    if not isinstance(obj, dict):
        raise DataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if "messages" in obj:
        instruction, response = _from_messages(obj["messages"], where)
    else:
        pair = next((p for p in FIELD_PAIRS if p[0] in obj and p[1] in obj), None)
        if pair is None:
            wanted = ", ".join(f"{a}/{b}" for a, b in FIELD_PAIRS)
            raise DataError(f"{where}: no known field pair ({wanted}, or messages); keys: {sorted(obj)}")
        instruction, response = obj[pair[0]], obj[pair[1]]
        if obj.get("input"):
            instruction = f"{instruction}\n\n{obj['input']}"
    for name, value in (("instruction", instruction), ("response", response)):
        if not isinstance(value, str) or not value.strip():
            raise DataError(f"{where}: {name} is missing or empty")
    record = {"instruction": instruction.strip(), "response": response.strip()}
    for extra in ("source", "licence"):
        if isinstance(obj.get(extra), str):
            record[extra] = obj[extra]
    return record


def read_records(path: str | Path) -> list[dict]:
    """All records of a JSONL or JSON-array file, normalised; raises DataError naming file:line."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a leading byte-order mark is accepted and dropped
    except UnicodeDecodeError as e:
        line = path.read_bytes()[: e.start].count(b"\n") + 1
        raise DataError(f"{path}:{line}: not UTF-8 ({e.reason} at byte {e.start})") from None
    if not text.strip():
        raise DataError(f"{path}: empty dataset")
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: malformed JSON: {e.msg}") from None
        records = [normalise(obj, f"{path}: item {i}") for i, obj in enumerate(items)]
    else:
        records = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: malformed JSON: {e.msg}") from None
            records.append(normalise(obj, f"{path}:{lineno}"))
    if not records:
        raise DataError(f"{path}: empty dataset")
    return records


def find_raw(raw_dir: str | Path, domain: str) -> Path:
    """data/raw/{domain}.jsonl or .json; exactly one must exist."""
    found = [p for p in (Path(raw_dir) / f"{domain}.jsonl", Path(raw_dir) / f"{domain}.json") if p.exists()]
    if not found:
        raise DataError(
            f"grid.domains: no dataset for domain {domain!r} (looked for {raw_dir}/{domain}.jsonl and .json)"
        )
    if len(found) > 1:
        raise DataError(f"domain {domain!r}: both {found[0]} and {found[1]} exist; keep one")
    return found[0]
