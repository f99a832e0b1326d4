"""Code dependencies, derived: the `src/locus` files a `locus` command runs.

A stage's code is its stage module and everything that module imports, transitively (found in the
source with `ast`: lazy imports inside functions and relative imports count), plus the command
line itself (`locus.cli`). Both tools use this list (dvc.yaml's deps, the Snakemake rules' `code`
input), so editing any of those files makes exactly the stages that run it stale.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

from locus.cli import STAGES as COMMANDS

PACKAGE = Path(__file__).resolve().parent  # src/locus


def _module_file(module: str) -> Path | None:
    """src/locus/a/b.py or src/locus/a/b/__init__.py for `locus.a.b`; None if not a locus module."""
    parts = module.split(".")
    if parts[0] != "locus":
        return None
    base = PACKAGE.joinpath(*parts[1:])
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imports(path: Path) -> set[str]:
    """The locus modules one file imports, anywhere in it (lazy imports inside functions too)."""
    package = ".".join(("locus", *path.relative_to(PACKAGE).parent.parts))
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from locus import io`
    return {m for m in found if _module_file(m)}


@cache
def _closure(module: str) -> frozenset[Path]:
    files, todo = set(), [module]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__ too
            f = _module_file(".".join(parts[:i]))
            if f and f not in files:
                files.add(f)
                todo.extend(_imports(f))
    return frozenset(files)


def code_files(command: str) -> list[str]:
    """The source files `locus <command>` runs: cli.py and everything its stage module imports,
    transitively, as paths relative to the repository root (src/locus/...), sorted."""
    files = _closure("locus.cli") | _closure(COMMANDS[command])
    return sorted(f"src/locus/{f.relative_to(PACKAGE).as_posix()}" for f in files)
