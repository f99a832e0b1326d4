"""Seeded generator of worked physics problems (there is no offline physics dataset to ingest).

`build(seed, n)` returns `n` records with distinct instructions, drawn round-robin from the
templates in `physics_templates/` (one module per topic, written in the dimensioned-quantity
language of `physics_dsl.py` and `physics_quantities.py`) so every template appears once
`n >= len(TEMPLATES)`. Each record's values come from its own `random.Random`, seeded from
(seed, template, slot, attempt) through SHA-256, so the output depends on nothing but `seed` and
`n`.
"""

from __future__ import annotations

import hashlib
import random

from locus.ingest.physics_dsl import Draft, Worked
from locus.ingest.physics_templates import TEMPLATES

MAX_ATTEMPTS = 200  # fresh draws per slot before giving up on finding an unseen instruction

# ------------------------------------------------------------------------------------ build


def _derive_seed(*parts) -> int:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def templates() -> dict:
    return TEMPLATES


def build_worked(seed: int = 0, n: int = 1000) -> list[Worked]:
    """`n` worked problems with distinct instructions, template-tagged, in a seeded shuffle."""
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    table = templates()
    names = list(table)
    seen: set[str] = set()
    out: list[Worked] = []
    for slot in range(n):
        name = names[slot % len(names)]
        for attempt in range(MAX_ATTEMPTS):
            worked = table[name](Draft(random.Random(_derive_seed(seed, name, slot, attempt)), name))
            key = " ".join(worked.instruction.lower().split())  # duplicates up to case and spacing
            if key not in seen:
                break
        else:
            raise RuntimeError(
                f"template {name!r}: no unseen instruction after {MAX_ATTEMPTS} draws "
                f"(n={n} is more than the templates can vary)"
            )
        seen.add(key)
        out.append(worked)
    random.Random(_derive_seed(seed, "shuffle", n)).shuffle(out)
    return out


def build(seed: int = 0, n: int = 1000) -> list[dict]:
    """`n` records {instruction, response, source, licence}; identical for identical (seed, n)."""
    return [w.record() for w in build_worked(seed, n)]
