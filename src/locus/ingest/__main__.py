"""CLI: ``python -m locus.ingest DOMAIN [--out PATH]`` or ``python -m locus.ingest all``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from . import DOMAINS, write_domain
from .common import REPO_ROOT, IngestError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m locus.ingest", description=__doc__)
    ap.add_argument("domain", choices=[*DOMAINS, "all"])
    ap.add_argument("--out", type=Path, help="output file (single domain only); default data/raw/DOMAIN.jsonl")
    ap.add_argument("--out-dir", type=Path, default=REPO_ROOT / "data" / "raw")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--n", type=int, default=None, help="records per domain (default: module's)")
    ap.add_argument("--json", action="store_true", help="print the per-domain summary as JSON")
    args = ap.parse_args(argv)
    if args.out and args.domain == "all":
        ap.error("--out needs a single domain; use --out-dir with 'all'")

    domains = list(DOMAINS) if args.domain == "all" else [args.domain]
    t0, summaries, failed = time.perf_counter(), [], []
    for domain in domains:
        out = args.out or args.out_dir / f"{domain}.jsonl"
        try:
            s = write_domain(domain, out, seed=args.seed, n=args.n)
        except ModuleNotFoundError as exc:
            if args.domain == "all" and exc.name == DOMAINS[domain]:
                print(f"[skip] {domain}: module {exc.name} not present", file=sys.stderr)
                continue
            raise
        except IngestError as exc:
            print(f"[fail] {domain}: {exc}", file=sys.stderr)
            failed.append(domain)
            continue
        summaries.append(s)
        if not args.json:
            i, r = s["instruction"], s["response"]
            print(
                f"{domain:16s} {s['count']:5d} records  {s['seconds']:6.1f}s  sha256 {s['sha256'][:16]}  "
                f"instr {i['min']}/{i['median']}/{i['p90']}/{i['max']}  "
                f"resp {r['min']}/{r['median']}/{r['p90']}/{r['max']}  -> {s['path']}",
                flush=True,
            )
    if args.json:
        print(json.dumps(summaries, indent=2))
    print(f"total {time.perf_counter() - t0:.1f}s", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
