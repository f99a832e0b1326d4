"""Offline, reproducible ingest of the instruction-tuning domains into ``data/raw/{domain}.jsonl``.

Each domain module exposes ``build(seed=0, n=...) -> list[dict]`` returning records with exactly the
keys ``instruction``, ``response``, ``source``, ``licence`` (non-empty strings) in a deterministic
order. Modules are imported lazily, so a missing optional module (or the separate
``.venv-ingest`` some generators need) only affects the domains that use it.

Run ``python -m locus.ingest DOMAIN`` or ``python -m locus.ingest all``; see data/README.md.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path

DOMAINS: dict[str, str] = {
    "cpp": "locus.ingest.cpp",
    "python": "locus.ingest.python_code",
    "math_linguistic": "locus.ingest.math_linguistic",
    "math_thinking": "locus.ingest.math_thinking",
    "physics": "locus.ingest.physics",  # written separately: seeded template generator
}


def build_domain(domain: str, seed: int = 0, n: int | None = None) -> list[dict]:
    """Records of one domain (the module's default size unless ``n`` is given), validated."""
    from .common import IngestError, validate_records

    if domain not in DOMAINS:
        raise IngestError(f"unknown domain {domain!r}; choose from {', '.join(DOMAINS)}")
    module = importlib.import_module(DOMAINS[domain])
    records = module.build(seed=seed) if n is None else module.build(seed=seed, n=n)
    validate_records(records)
    return records


def write_domain(domain: str, out: str | Path, seed: int = 0, n: int | None = None) -> dict:
    """Build one domain and write it atomically; return count, sha256, seconds and length stats."""
    from locus.io import sha256_file, write_jsonl

    from .common import length_stats

    t0 = time.perf_counter()
    records = build_domain(domain, seed=seed, n=n)
    count = write_jsonl(out, records)
    return {
        "domain": domain,
        "path": str(out),
        "count": count,
        "sha256": sha256_file(out),
        "seconds": round(time.perf_counter() - t0, 2),
        **length_stats(records),
    }
