"""Command: let each tool count the other's finished cells as done, without running anything.

    snakemake --cores all results/report.html    # the grid, by Snakemake
    locus adopt                                  # its cells become DVC's: dvc.lock, no retraining
    dvc repro                                    # runs only what Snakemake did not (the experiment tables)
    locus adopt --from dvc                       # after `dvc checkout`: Snakemake accepts DVC's outputs

Both tools run the same `locus` commands and write the same paths, so a cell one of them finished
is the cell the other would produce (bit-identical on CPU). For every stage of dvc.yaml whose
outputs all exist, Snakemake's record of how it made them (.snakemake/metadata: the shell command
and the rule's params) is compared with what DVC would run: the same command, and the same values
of the params keys the stage tracks. Matching stages are committed (`dvc commit`, which hashes
deps, params and outs into dvc.lock); any other is refused, named with both commands.

The other direction usually needs no command: Snakemake accepts outputs that DVC wrote (they are
newer than their inputs, and an output without Snakemake metadata has no recorded command or
params that could differ), so after `dvc repro` or `dvc exp run` `snakemake -n` plans nothing that
DVC already produced. `dvc checkout` may re-create output directories, though, in any order; then
`--from dvc` checks that `dvc status` finds every stage up to date and re-stamps the outputs'
mtimes in pipeline order (inputs before outputs), so Snakemake sees them as made in order.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
from pathlib import Path

from locus.pipeline import tracked_params

METADATA = Path(".snakemake") / "metadata"


def snakemake_record(path: Path) -> dict | None:
    """Snakemake's metadata record for one output path (its persistence layout: the path's
    urlsafe base64, split into directories of at most NAME_MAX - 1 characters); None if absent."""
    encoded = base64.urlsafe_b64encode(str(path).encode()).decode()
    max_len = os.pathconf(".", "PC_NAME_MAX") if METADATA.exists() else 255
    parts = [encoded[i : i + max_len - 1] for i in range(0, len(encoded), max_len - 1)]
    record = METADATA.joinpath(*["@" + p for p in parts[:-1]], parts[-1])
    return json.loads(record.read_text()) if record.is_file() else None


def records_for(out: Path) -> list[dict] | None:
    """The records of a DVC output: its own, or (a directory DVC tracks whole, such as a prepared
    data split) those of the files Snakemake wrote into it. None when Snakemake made none of it."""
    own = snakemake_record(out)
    if own:
        return [own]
    if out.is_dir():
        found = [r for f in sorted(out.rglob("*")) if f.is_file() and (r := snakemake_record(f))]
        return found or None
    return None


def command(text: str) -> str:
    """A shell command without Snakemake's logging tail, whitespace collapsed."""
    return " ".join(text.split(" 2>&1")[0].split())


def verdict(stage, params) -> str | None:
    """None if Snakemake made this DVC stage's outputs exactly as DVC would; else why not."""
    name = stage.addressing.split("@")[0]
    tracked = tracked_params(params, name, params.method)  # the experiment's cells are `method`'s
    want_cmd, want_params = command(stage.cmd), str(tracked) if tracked else None
    for out in (Path(str(o)) for o in stage.outs):
        records = records_for(out)
        if records is None:
            return f"{out}: not made by Snakemake"
        for r in records:
            if command(r["shellcmd"]) != want_cmd:
                return f"Snakemake ran `{command(r['shellcmd'])}`; dvc.yaml runs `{want_cmd}`"
            if want_params and want_params not in r.get("params", []):
                return "Snakemake made it with other values of its params keys than params.yaml's"
    return None


def newest_mtime(path: Path) -> float:
    files = [path] if path.is_file() else [f for f in path.rglob("*") if f.is_file()]
    return max((f.stat().st_mtime for f in files), default=0.0)


def is_output(path: Path, outs: set[Path]) -> bool:
    """Whether `path` is (in, or holds) a stage's output, rather than a source such as code or raw data."""
    return any(path.is_relative_to(o) or o.is_relative_to(path) for o in outs)


def restamp(repo) -> int:
    """Every existing DVC output stamped in pipeline order, 1 ms apart from just after its newest
    source input (code, raw data), refusing unless DVC finds all stages up to date: then each output
    is what its inputs make, and only its mtime was off. Starting there, not now, keeps what
    Snakemake alone made from them (the grid's tables) newer, as it was."""
    changed = sorted(repo.status())
    if changed:
        raise ValueError(
            f"dvc status: {len(changed)} stages not up to date ({', '.join(changed[:5])}); "
            "run `dvc repro` or `dvc checkout` first"
        )
    stages = list(repo.index.stages)
    outs = {Path(str(o)) for s in stages for o in s.outs}
    sources = {
        Path(str(d))
        for s in stages
        for d in s.deps
        if type(d).__name__ != "ParamsDependency" and not is_output(Path(str(d)), outs)
    }
    start = max((newest_mtime(p) for p in sources if p.exists()), default=0.0) + 0.001
    n = 0
    for stage in stages:
        for out in (Path(str(o)) for o in stage.outs):
            if out.exists():
                stamp = start + n / 1000
                for path in [out, out / ".snakemake_timestamp"] if out.is_dir() else [out]:
                    if path.exists():
                        os.utime(path, (stamp, stamp))
                n += 1
    return n


def add_arguments(parser) -> None:
    parser.add_argument(
        "--from",
        dest="source",
        choices=["snakemake", "dvc"],
        default="snakemake",
        help="snakemake: record its finished stages in dvc.lock (default); "
        "dvc: re-stamp DVC's up-to-date outputs for Snakemake",
    )
    parser.add_argument("--dry-run", action="store_true", help="only say what would be adopted")


def run(args, params) -> None:
    from dvc.repo import Repo

    if args.source == "dvc":
        if not args.dry_run:
            print(f"re-stamped {restamp(Repo('.'))} up-to-date DVC outputs in pipeline order for Snakemake")
        return
    if args.params != "params.yaml" or args.preset:
        raise ValueError("dvc.yaml reads params.yaml only: adopt what Snakemake ran without --config params/preset")
    adopted, refused = [], []
    for stage in Repo(".").index.stages:
        if not stage.cmd or not stage.outs or not all(Path(str(o)).exists() for o in stage.outs):
            continue  # not finished (or never run): nothing to adopt
        why = verdict(stage, params)
        (refused if why else adopted).append((stage.addressing, why))
    for name, why in refused:
        print(f"not adopted: {name}: {why}")
    if adopted and not args.dry_run:
        names = [name for name, _ in adopted]
        done = subprocess.run(["dvc", "commit", "--force", "--quiet", *names], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"dvc commit failed: {(done.stderr or done.stdout).strip().splitlines()[-1]}")
    print(
        f"{'would adopt' if args.dry_run else 'adopted'} {len(adopted)} stages from Snakemake into dvc.lock"
        + (f"; {len(refused)} not adopted" if refused else "")
    )
