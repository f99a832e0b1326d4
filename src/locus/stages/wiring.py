"""Stage: write dvc.yaml from the pipeline definition (locus.pipeline), or check it is current.

locus wiring            regenerate dvc.yaml (after changing a stage or any import under src/locus)
locus wiring --check    exit 1 if the committed dvc.yaml differs from what the table generates
"""

from __future__ import annotations

from pathlib import Path

from locus import io
from locus.dvc_yaml import dvc_yaml


def add_arguments(parser) -> None:
    parser.add_argument("--out", default="dvc.yaml", help="file to write (default: dvc.yaml)")
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 when it differs")


def run(args, params) -> None:
    generated, target = dvc_yaml(), Path(args.out)
    current = target.read_text(encoding="utf-8") if target.exists() else None
    if args.check:
        if current != generated:
            raise ValueError(f"{target}: out of date with src/locus/pipeline.py; run `locus wiring`")
        print(f"{target}: up to date")
        return
    if current == generated:
        print(f"{target}: unchanged")
        return
    io.write_text(target, generated)
    print(f"{target}: written ({len(generated.splitlines())} lines)")
