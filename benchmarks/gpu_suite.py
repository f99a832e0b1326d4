"""The GPU suite: everything a lent GPU should answer, in one command (≤ 8 minutes on an H100/H200).

  benchmarks/gpu_suite.sh                  # CUDA: Llama-3.2-3B-shaped random model, NF4 on cuda:0
  benchmarks/gpu_suite.sh --shape tiny     # proves the suite end to end on CPU (tests/integration/test_gpu_suite.py)

1. environment: torch, CUDA, the device, bf16 support, bitsandbytes and one NF4 matmul on the device;
2. one real pipeline cell, stage by stage, without a workflow engine (the commands `dvc repro` runs,
   locus.pipeline.experiment_jobs; `locus` stages: prepare-model, quantize-base, prepare-data,
   init-adapter, evaluate (base), train, delta, effective, represent, evaluate) on a random model
   of the shape (benchmarks/random_model.py; no download), ~20 optimizer steps; its metrics.json
   says where and how it ran (device, nf4_kernel, bf16 autocast, threads, tokens/s);
3. the correctness checks of benchmarks/gpu_checks.py on that cell: placement, dtypes under
   autocast, the NF4 W₀ vs bitsandbytes' kernels on the device, evaluate vs the train stage's eval
   loss, kill and resume;
4. benchmarks/train_throughput.py for the shape on the cell's own model and adapter: the naive
   seed-style loop vs the train stage;
5. the full-FT arm (train-full, full-ft-effective), aggregate and report, then the full-FT check:
   last, because the arm's dense spectra are the least predictable cost;
6. writes benchmarks/results/gpu-{device}-{shape}.json and .md (the table for the README).
Every stage time and check result is appended to benchmarks/results/progress-{shape}.jsonl as it
comes; past --budget-s what has not started is skipped, saying so (the LoRA cell always runs).
The counted work of a run and its time on paper: docs/gpu-and-cluster.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
DOMAIN = "math_linguistic"
LR, FULL_FT_LR, SEED = 0.001, 1e-05, 0
# Per shape: tokenizer vocabulary, micro-batch, max length, model dtype on disk.
SETTINGS = {
    "tiny": dict(vocab=320, batch=2, length=256, dtype="float32"),
    "llama-3.2-3b": dict(vocab=8192, batch=4, length=512, dtype="bfloat16"),
}


def environment() -> dict:
    import torch

    env = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.cuda.is_available(),
        "cuda_version": torch.version.cuda,
        "threads": torch.get_num_threads(),
    }
    if env["cuda"]:
        env |= {
            "device": torch.cuda.get_device_name(),
            "bf16": torch.cuda.is_bf16_supported(),
            "memory_gib": round(torch.cuda.get_device_properties(0).total_memory / 2**30, 1),
        }
    else:
        env["device"] = "cpu"
    # Where the packages the image may lack came from: the carried wheels (gpu_suite.sh's target
    # folder) or the image itself.
    from importlib.util import find_spec

    env["imported_from"] = {
        name: str(Path(spec.origin).parent.parent) if (spec := find_spec(name)) and spec.origin else None
        for name in ("pydantic", "pydantic_core", "bitsandbytes", "datasets", "dill", "multiprocess")
    }
    try:
        import bitsandbytes as bnb

        layer = bnb.nn.Linear4bit(256, 256, compute_dtype=torch.bfloat16, quant_type="nf4")
        layer = layer.to("cuda" if env["cuda"] else "cpu")
        x = torch.randn(4, 256, dtype=torch.bfloat16, device=layer.weight.device)
        env["bitsandbytes"] = bnb.__version__
        env["nf4_matmul_ok"] = bool(torch.isfinite(layer(x)).all())
    except Exception as e:  # noqa: BLE001 - the suite reports what fails instead of stopping
        env["bitsandbytes"] = f"unavailable: {type(e).__name__}: {e}"
        env["nf4_matmul_ok"] = False
    return env


# The full-FT arm and what reads it, run after everything else: its 168 dense fp64 spectra of a 3B
# model are the suite's least predictable cost (docs/gpu-and-cluster.md, counted work), so a slot that
# ends early still has the LoRA cell, its checks and the throughput rows.
LATE_STAGES = ("train_full", "full_ft_effective", "aggregate", "report")


def run_jobs(params_file: Path, work: Path, progress, late: bool = False) -> list[dict]:
    """The `locus` commands of the params' experiment (locus.pipeline.experiment_jobs: what `dvc
    repro` runs, in dependency order) — those of LATE_STAGES when `late`, the others otherwise —
    each as `python -m locus`: no workflow engine needed on a bare GPU machine. The report stage is
    skipped, saying so, where vl-convert (too large to carry) is missing. Each stage's time is
    reported as it finishes; a failing stage stops the cell."""
    from importlib.util import find_spec

    from locus.params import load
    from locus.pipeline import experiment_jobs

    done = []
    for name, command in experiment_jobs(load(params_file)):
        if (name in LATE_STAGES) != late:
            continue
        stage, *rest = command.split()[1:]
        if name == "report" and find_spec("vl_convert") is None:
            done.append(progress({"stage": name, "skipped": "vl-convert is not installed (not carried: too large)"}))
            continue
        start = time.perf_counter()
        run = subprocess.run(
            [sys.executable, "-m", "locus", stage, "--params", str(params_file), *rest],
            cwd=ROOT,
            capture_output=True,
            text=True,
            env={
                **os.environ,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH")])),
            },
        )
        (work / "logs").mkdir(exist_ok=True)
        (work / "logs" / f"{'late-' if late else ''}{len(done):02d}-{name}.log").write_text(run.stdout + run.stderr)
        done.append(progress({"stage": name, "seconds": round(time.perf_counter() - start, 1), "exit": run.returncode}))
        if run.returncode:
            raise SystemExit(f"stage {name} failed (exit {run.returncode}): {command}\n{run.stderr[-2000:]}")
    return done


def release_gpu_memory() -> None:
    """Free what this (parent) process holds on the GPU: the objects a check left for the garbage
    collector, then the caching allocator's blocks, which it otherwise keeps from other processes."""
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.ipc_collect()


def pipeline_cell(shape: str, steps: int, work: Path, progress) -> dict:
    """One grid cell, stage by stage (run_jobs), on a random model of `shape`; returns its metrics and timings."""
    from random_model import build, raw_texts

    s = SETTINGS[shape]
    model_src = build(
        work / f"random-{shape}",
        shape,
        raw_texts(ROOT / "data/raw" / f"{DOMAIN}.jsonl"),
        vocab_size=s["vocab"],
        dtype=s["dtype"],
    )
    release_gpu_memory()  # the build's cached blocks would crowd every stage's process (full FT most)
    results = work / "results"
    params = {
        "results_dir": str(results),
        "models_dir": str(work / "models"),
        "lr": LR,
        "model": {"source": str(model_src), "dtype": s["dtype"]},
        "training": {
            "per_device_batch_size": s["batch"],
            "grad_accum_steps": 1,
            "max_seq_length": s["length"],
            "checkpoint_every": 0,
        },
        "grid": {"domains": [DOMAIN], "learning_rates": [LR], "seeds": [SEED]},
        "evaluation": {"domains": [DOMAIN]},
        "full_ft": {"domains": [DOMAIN], "learning_rates": [FULL_FT_LR]},
        "data": {
            "raw_dir": str(ROOT / "data/raw"),
            "max_train_examples": steps * s["batch"],
            "max_eval_examples": 2 * s["batch"],
        },
    }
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    for key, value in params.items():
        base[key] = base[key] | value if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    params_file = work / "params.yaml"
    params_file.write_text(yaml.safe_dump(base))
    start = time.perf_counter()
    stages = run_jobs(params_file, work, progress)
    seconds = time.perf_counter() - start
    from locus import layout
    from locus.params import load

    loaded = load(params_file)
    cell = layout.cell_dir(loaded, DOMAIN, LR, SEED)
    return {
        "seconds": round(seconds, 1),
        "stages": stages,
        "metrics": json.loads((cell / "metrics.json").read_text()),
        "params_file": str(params_file),
        "cell": str(cell),
        "init": str(layout.init_dir(loaded, SEED)),
        "full_ft": str(layout.full_ft_dir(loaded, DOMAIN, FULL_FT_LR, SEED)),
        "model": str(layout.model_dir(loaded)),
        "w0": str(layout.pattern("w0_file", loaded)),
        "data": str(layout.data_dir(loaded, DOMAIN)),
    }


SPENT = "skipped: the suite's time budget (--budget-s) is spent"


def checks(
    cell: dict, steps: int, work: Path, progress, deadline: float = float("inf"), full_ft: bool = False
) -> list[dict]:
    """benchmarks/gpu_checks.py on the cell the pipeline just ran (`full_ft`: the full-FT arm's
    check, after that arm); a check that raises is a failure. Past `deadline` (time.monotonic()) the
    remaining checks are skipped, each saying so (no answer, no failure), so a run that must stop at
    a fixed time keeps what it has."""
    import gpu_checks as g
    from locus.params import load

    params = load(cell["params_file"])
    c, init = Path(cell["cell"]), cell["init"]
    todo = [
        ("placement of every stage's model", lambda: g.placement(params, cell["model"], init)),
        ("dtypes under the Trainer's autocast", lambda: g.dtypes(params, cell["model"], init, cell["data"])),
        (
            "NF4 W₀ = bitsandbytes' kernels on the training device",
            lambda: g.nf4_on_device(params, cell["model"], cell["w0"]),
        ),
        ("evaluate loss = train stage's eval loss after", lambda: g.eval_loss(c, DOMAIN)),
        ("kill and resume", lambda: g.resume(Path(cell["params_file"]), init, cell, work, steps)),
    ]
    if full_ft:
        todo = [("full fine-tuning writes ΔW", lambda: g.full_ft(Path(cell["full_ft"])))]
    out = []
    for name, check in todo:
        if time.monotonic() > deadline:
            out.append(progress({"check": g.result(name, None, SPENT)})["check"])
            continue
        try:
            out.append(check())
        except Exception as e:  # noqa: BLE001 - the suite reports what fails instead of stopping
            out.append(g.result(name, False, f"{type(e).__name__}: {str(e)[:300]}"))
        release_gpu_memory()  # a check's models must not crowd the next one's subprocesses
        progress({"check": out[-1]})
    return out


def throughput(shape: str, steps: int, out: Path, cell: dict) -> dict:
    """train_throughput.py on the pipeline cell's own model, data, initial adapter and W₀ (--reuse):
    nothing built, quantized or written again."""
    import torch

    reuse = Path(cell["params_file"]).with_name("throughput-paths.json")
    reuse.write_text(json.dumps({k: cell[k] for k in ("model", "data", "init", "w0")}))
    cmd = [
        sys.executable,
        str(ROOT / "benchmarks/train_throughput.py"),
        "--shape",
        shape,
        "--steps",
        str(steps),
        "--domain",
        DOMAIN,
        "--results-dir",
        str(out),
        "--reuse",
        str(reuse),
    ]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if run.returncode:
        raise SystemExit(f"throughput benchmark failed (exit {run.returncode}):\n" + run.stderr[-3000:])
    return json.loads((out / f"throughput-{'cuda' if torch.cuda.is_available() else 'cpu'}-{shape}.json").read_text())


def late_words(stages: list[dict]) -> str:
    if any("skipped" in st and st["stage"] != "report" for st in stages):
        return SPENT
    ran = [st for st in stages if "seconds" in st]
    return f"{sum(st['seconds'] for st in ran):.1f} s: " + ", ".join(f"{st['stage']} {st['seconds']} s" for st in ran)


def markdown(report: dict) -> str:
    env, cell = report["environment"], report["pipeline"]
    m = cell["metrics"]
    lines = [
        f"GPU suite, {report['shape']} on {env['device']} (torch {env['torch']}, CUDA {env['cuda_version']}, "
        f"bitsandbytes {env['bitsandbytes']}), {report['date']}",
        "",
        "| check | result |",
        "|---|---|",
        f"| NF4 matmul on the device | {'ok' if env['nf4_matmul_ok'] else 'FAILED'} |",
        f"| pipeline cell, stage by stage | {cell['seconds']} s, {m['optimizer_steps']} steps, device "
        f"{m['device']}, NF4 kernel {m.get('nf4_kernel')}, bf16 autocast {m.get('bf16_autocast')}, "
        f"{m['train_tokens_per_second']} tokens/s, eval loss {m['eval_loss_before']:.3f} → {m['eval_loss_after']:.3f} |",
        f"| full-FT arm and aggregate, after the rest | {late_words(cell.get('late_stages', []))} |",
        *(
            f"| {c['check']} | {'ok' if c['ok'] else 'n/a' if c['ok'] is None else 'FAILED'}: {c['detail']} |"
            for c in report["checks"]
        ),
        "",
        report["throughput"].get("table", ""),
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shape", choices=sorted(SETTINGS), default="llama-3.2-3b")
    ap.add_argument("--steps", type=int, default=20, help="optimizer steps of the pipeline cell")
    ap.add_argument("--throughput-steps", type=int, default=6)
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results"))
    ap.add_argument(
        "--budget-s",
        type=float,
        default=420,
        help="after this many seconds, skip the checks and the throughput rows not yet started (the pipeline "
        "cell always runs); 420 leaves an 8-minute device slot a minute for start-up",
    )
    args = ap.parse_args()
    deadline = time.monotonic() + args.budget_s
    report = {"shape": args.shape, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress_file = out / f"progress-{args.shape}.jsonl"  # one line per result as it comes: a killed run keeps them
    progress_file.write_text("")

    def progress(entry: dict) -> dict:
        line = json.dumps(entry, default=str)
        with progress_file.open("a") as f:
            f.write(line + "\n")
        print(line, flush=True)
        return entry

    report["environment"] = progress(environment())
    with tempfile.TemporaryDirectory(prefix="locus-gpu-suite-") as tmp:
        report["pipeline"] = pipeline_cell(args.shape, args.steps, Path(tmp), progress)
        progress({"pipeline cell seconds": report["pipeline"]["seconds"]})
        report["checks"] = checks(report["pipeline"], args.steps, Path(tmp), progress, deadline)
        if time.monotonic() > deadline:
            report["throughput"] = progress({"throughput": SPENT, "table": "", "results": {}})
        else:
            report["throughput"] = throughput(args.shape, args.throughput_steps, out, report["pipeline"])
        if time.monotonic() > deadline:
            report["pipeline"]["late_stages"] = [progress({"stage": n, "skipped": SPENT}) for n in LATE_STAGES]
        else:
            report["pipeline"]["late_stages"] = run_jobs(
                Path(report["pipeline"]["params_file"]), Path(tmp), progress, late=True
            )
        report["checks"] += checks(report["pipeline"], args.steps, Path(tmp), progress, deadline, full_ft=True)
    slug = "".join(c if c.isalnum() else "-" for c in report["environment"]["device"].lower()).strip("-")
    stem = out / f"gpu-{slug}-{args.shape}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1, default=str))
    stem.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    print(f"-> {stem}.json, {stem}.md")
    if failed := [c["check"] for c in report["checks"] if c["ok"] is False]:
        raise SystemExit(f"failed checks: {', '.join(failed)}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
