"""Small I/O helpers shared by every stage.

Every output is written to a temporary sibling first and renamed into place, so a killed stage
never leaves a file or directory that looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    staged = tmp / target.name
    if is_dir:
        staged.mkdir()
    try:
        yield staged
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(staged, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def one_line(error: BaseException) -> str:
    """An error message on one line (some libraries' span several)."""
    return " ".join(str(error).split()) or type(error).__name__


@contextlib.contextmanager
def reading(path: str | os.PathLike) -> Iterator[None]:
    """Any error while reading `path` (missing, empty, truncated, not what it should be) becomes
    one ValueError naming it, so the user sees the file, not a library's traceback."""
    try:
        yield
    except Exception as e:
        message = one_line(e)
        if str(path) in message:
            raise
        if isinstance(e, FileNotFoundError):
            raise FileNotFoundError(f"{path}: no such file") from e
        raise ValueError(f"{path}: unreadable ({type(e).__name__}: {message})") from e


def read_parquet(path: str | os.PathLike):
    """A parquet table as a pandas DataFrame; any read error names the file (reading)."""
    import pandas as pd

    with reading(path):
        return pd.read_parquet(path)


def read_json(path: str | os.PathLike):
    """A JSON file's content (a UTF-8 byte-order mark is accepted); any read error names the file."""
    with reading(path):
        return json.loads(Path(path).read_text(encoding="utf-8-sig"))


def check_safetensors(path: str | os.PathLike) -> None:
    """Parse a safetensors file's header (cheap: no tensor is read); any problem names the file."""
    from safetensors import safe_open

    with reading(path), safe_open(path, "np"):
        pass


def write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(target: str | os.PathLike, obj) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n")


def write_parquet(target: str | os.PathLike, table) -> None:
    """A pandas DataFrame as parquet, without its index."""
    with atomic_path(target) as tmp:
        table.to_parquet(tmp, index=False)


def write_jsonl(target: str | os.PathLike, records: Iterable[dict]) -> int:
    """Write one JSON object per line (UTF-8, key order kept); return the number of lines."""
    lines = [json.dumps(r, ensure_ascii=False) for r in records]
    write_text(target, "".join(line + "\n" for line in lines))
    return len(lines)


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
