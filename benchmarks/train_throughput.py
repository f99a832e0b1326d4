"""Train-stage throughput against the naive seed-style loop, side by side on the same inputs.

Both arms start from the same initial adapter, read the same tokenized examples in the same order,
use the same effective batch (per-device batch × accumulation), schedule and number of optimizer
steps, and differ only in how the step is executed:
  naive   what the seed describes: HF PEFT + Trainer, per-device batch 2 × accumulation 4, padding
          to the longest in each batch, `prepare_model_for_kbit_training` with its default gradient
          checkpointing (QLoRA) — the loop most tutorials give.
  locus   the train stage itself (`locus.stages.train.run`, unchanged) with the params' settings.
Columns: tokens/s counts every position the model computed (padding included), useful tokens/s
only real tokens; ratio = locus useful tokens/s ÷ naive useful tokens/s; MFU = 6·N·useful tokens/s
÷ peak FLOP/s (N = base parameters; CUDA only, peak from --peak-tflops); peak memory = CUDA max
allocated, or the process's peak RSS growth on CPU; final loss = mean of the last 3 step losses.

  python benchmarks/train_throughput.py                         # CPU: SmolLM2 (models/base), real data
  python benchmarks/train_throughput.py --shape llama-3.2-3b    # CUDA: random 3B-shaped weights, seq 512
Writes benchmarks/results/throughput-{device}.json and the two loss curves as CSV.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
# Dense bf16 peaks (vendor data sheets); the first name contained in the device's name wins.
PEAK_TFLOPS = {"h100 pcie": 756.0, "h100": 989.0, "h200": 989.0, "a100": 312.0}


def setup(args, params, work: Path) -> dict:
    """Base model, data split and initial adapter shared by both arms."""
    from argparse import Namespace

    from locus import io
    from locus.stages import init_adapter, quantize_base
    from locus.training.records import read_records

    if args.shape != "base":  # random weights of a real shape and an offline tokenizer (no download)
        from random_model import build, raw_texts

        model_dir = build(
            work / f"random-{args.shape}",
            args.shape,
            raw_texts(ROOT / params.data.raw_dir / f"{args.domain}.jsonl"),
            vocab_size=320 if args.shape == "tiny" else 8192,
            dtype="float32" if args.shape == "tiny" else "bfloat16",
        )
    else:
        model_dir = ROOT / params.models_dir / "base"
        if not (model_dir / "model.safetensors").exists():
            sys.exit(f"{model_dir}: run `locus prepare-model --out {model_dir}` first")
    records = read_records(ROOT / params.data.raw_dir / f"{args.domain}.jsonl")
    need = args.steps * params.training.per_device_batch_size * params.training.grad_accum_steps
    data_dir = work / "data"
    # A margin beyond the budget: both arms take the first `need` usable examples, in this order
    # (an example dropped by the over-length policy is replaced, as in the pipeline).
    margin = need + 16
    io.write_jsonl(data_dir / "train.jsonl", records[:margin])
    io.write_jsonl(data_dir / "eval.jsonl", records[margin : margin + 8])
    init_dir = work / "adapter_init"
    init_adapter.run(
        Namespace(model=str(model_dir), seed=0, out=str(init_dir), layers=None, layers_from=None, arm=None), params
    )
    w0 = work / "base-w0.safetensors"  # as the pipeline does: NF4 quantized once per model, before any arm
    quantize_base.run(Namespace(model=str(model_dir), out=str(w0)), params)
    return {"model": str(model_dir), "data": str(data_dir), "init": str(init_dir), "w0": str(w0)}


def naive_arm(params, paths: dict, out: Path) -> dict:
    """The seed-style loop: PEFT + Trainer, batch 2 × accumulation 4, padding to the longest,
    `prepare_model_for_kbit_training` defaults (gradient checkpointing on), model in train mode."""
    from peft import PeftModel, prepare_model_for_kbit_training
    from transformers import DataCollatorForSeq2Seq, Trainer

    from locus.training.cell_data import load_split
    from locus.training.loop import CountingCollator, StepLog, training_arguments
    from locus.training.modeling import load_base, load_tokenizer, seed_everything
    from locus.training.sft_data import IGNORE_INDEX

    seed_everything(0)
    tok = load_tokenizer(paths["model"])
    train_set, counts = load_split(tok, Path(paths["data"]) / "train.jsonl", params, "max_train_examples")
    model = load_base(params, paths["model"])
    if params.quantization.method == "nf4":
        model = prepare_model_for_kbit_training(model)  # gradient checkpointing by default
    else:
        model.gradient_checkpointing_enable()
        model.enable_input_require_grads()
    model = PeftModel.from_pretrained(model, paths["init"], is_trainable=True)
    padded = CountingCollator(DataCollatorForSeq2Seq(tok, padding="longest", label_pad_token_id=IGNORE_INDEX))
    log = StepLog()
    trainer = Trainer(
        model=model,
        args=training_arguments(params, params.lr, 0, str(out / "scratch")),
        train_dataset=train_set,
        data_collator=padded,
        callbacks=[log],
    )
    start = time.perf_counter()
    result = trainer.train()
    seconds = time.perf_counter() - start
    return {
        "seconds": seconds,
        "steps": result.global_step,
        "positions": padded.positions,
        "tokens": padded.tokens,
        "losses": [r["loss"] for r in log.rows],
    }


def locus_arm(params, paths: dict, out: Path) -> dict:
    """The train stage exactly as `locus train` runs it."""
    from argparse import Namespace

    from locus.stages import train

    train.run(
        Namespace(
            model=paths["model"],
            w0=paths["w0"],
            data=paths["data"],
            init=paths["init"],
            before=None,  # the eval loss before training is scored here (not timed: train_seconds)
            lr=params.lr,
            seed=0,
            out=str(out),
        ),
        params,
    )
    m = json.loads((out / "metrics.json").read_text())
    tokens = m["train_tokens_per_second"] * m["train_seconds"]  # real tokens of the steps trained
    rows = (out / "train_log.csv").read_text().splitlines()
    loss_col = rows[0].split(",").index("loss")
    return {
        "seconds": m["train_seconds"],
        "steps": m["optimizer_steps"],
        "positions": tokens / (1 - m["train_padding_fraction"]),
        "tokens": tokens,
        "losses": [float(r.split(",")[loss_col]) for r in rows[1:]],
    }


def median_run(runs: list[dict]) -> dict:
    """The run with the median time (its losses and memory), plus every run's seconds."""
    ordered = sorted(runs, key=lambda r: r["seconds"])
    return ordered[(len(ordered) - 1) // 2] | {"all_seconds": [r["seconds"] for r in runs]}


def peak_memory_gib(rss_before_kib: int) -> float:
    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**30
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before_kib) / 2**20


def run_arm(args) -> None:
    """Child process: one arm, measured alone (fresh peak-memory counters)."""
    from locus.params import load

    params = with_training(load(ROOT / "params.yaml", args.preset), max_steps=args.steps)
    need = args.steps * params.training.per_device_batch_size * params.training.grad_accum_steps
    params = apply_settings(params, [f"data.max_train_examples={need}", "data.max_eval_examples=4"])
    if args.arm == "naive":  # the seed's micro-batch of 2 at the same effective batch, fp32, bitsandbytes
        t = params.training
        params = with_training(
            params,
            per_device_batch_size=2,
            mixed_precision="no",
            grad_accum_steps=t.per_device_batch_size * t.grad_accum_steps // 2,
        )
        params = apply_settings(params, ['quantization.cpu_kernel="bitsandbytes"'])
    else:
        params = apply_settings(params, args.set)
    threads = dict(parse_setting(x) for x in args.set).get("threads", args.threads)
    if threads:
        torch.set_num_threads(int(threads))
    paths = json.loads(Path(args.paths).read_text())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = Path(args.out)
    result = (naive_arm if args.arm == "naive" else locus_arm)(params, paths, out)
    result["peak_gib"] = peak_memory_gib(rss)
    result["threads"] = torch.get_num_threads()
    result["base_params"] = base_parameters(paths["model"])
    (out / "result.json").write_text(json.dumps(result))


def apply_settings(params, settings: list[str]):
    """params with each KEY=VALUE applied: training.KEY, or SECTION.KEY for another section."""
    for text in settings:
        key, value = parse_setting(text)
        if key == "threads":  # not a param: torch's intra-op threads for this arm (run_arm)
            continue
        section, _, name = key.rpartition(".")
        section = section or "training"
        current = getattr(params, section)
        params = params.model_copy(update={section: type(current)(**(current.model_dump() | {name: value}))})
    return params


def with_training(params, **changes):
    """params with training.<key> replaced (re-validated, so a bad --set names its key)."""
    from locus.params import TrainingParams

    return params.model_copy(update={"training": TrainingParams(**(params.training.model_dump() | changes))})


def parse_setting(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    return key, json.loads(value) if value not in ("", None) else value


def base_parameters(model_dir: str) -> int:
    """N of the 6·N FLOPs-per-token estimate: every stored base weight (tied embeddings once)."""
    from locus.resources import parameter_count

    return parameter_count(model_dir)


def measured_bf16_peak_tflops(size: int = 2048, repeats: int = 20) -> float:
    """This machine's bf16 matmul rate (TFLOP/s), the CPU's practical peak for MFU."""
    a, b = torch.randn(size, size, dtype=torch.bfloat16), torch.randn(size, size, dtype=torch.bfloat16)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e12


def table(results: dict, device: str, peak_tflops: float | None) -> str:
    """MFU in two conventions against peak_tflops: model FLOPs 6·N per token (PaLM's MFU, as if every
    weight had a gradient) and 4·N (what a frozen base plus LoRA computes: forward + input gradients)."""
    naive_useful = results["naive"]["tokens"] / results["naive"]["seconds"]
    lines = [
        "| arm | optimizer steps | s (runs) | tokens/s | useful tokens/s | vs naive | MFU 6N | MFU 4N "
        "| peak memory (GiB) | final loss |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for arm, r in results.items():
        useful = r["tokens"] / r["seconds"]
        mfu = [f"{k * r['base_params'] * useful / (peak_tflops * 1e12):.1%}" if peak_tflops else "n/a" for k in (6, 4)]
        tail = r["losses"][-3:]
        runs = ", ".join(f"{x:.1f}" for x in r.get("all_seconds", [r["seconds"]]))
        lines.append(
            f"| {arm} | {r['steps']} | {runs} | {r['positions'] / r['seconds']:,.0f} | {useful:,.0f} | "
            f"{useful / naive_useful:.2f}× | {mfu[0]} | {mfu[1]} | {r['peak_gib']:.2f} | "
            f"{sum(tail) / len(tail):.4f} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default=None, help="params preset overlaid on params.yaml")
    ap.add_argument(
        "--shape",
        choices=["base", "tiny", "llama-3.2-3b"],
        default="base",
        help="base: the prepared params model; otherwise random weights of that shape (benchmarks/random_model.py)",
    )
    ap.add_argument("--results-dir", default=str(ROOT / "benchmarks/results"))
    ap.add_argument("--domain", default="python")
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per arm")
    ap.add_argument("--peak-tflops", type=float, default=None, help="for MFU (default: from the GPU's name)")
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="training.KEY (or SECTION.KEY) for the locus arm only, e.g. --set padding_free=true "
        "--set per_device_batch_size=8 --set grad_accum_steps=1",
    )
    ap.add_argument(
        "--arm-set",
        action="append",
        default=[],
        metavar="NAME:KEY=VALUE[,KEY=VALUE]",
        help="an extra locus arm with these settings (repeatable), run in the same session as "
        "the others, e.g. --arm-set 'bitsandbytes:quantization.cpu_kernel=\"bitsandbytes\"'",
    )
    ap.add_argument("--threads", type=int, default=None, help="torch threads in every arm (default: torch's)")
    ap.add_argument("--repeats", type=int, default=1, help="run the arm sequence this many times (median reported)")
    ap.add_argument(
        "--reuse",
        default=None,
        help="JSON {model, data, init, w0} of an existing setup (the GPU suite's own cell): no model is built,"
        " quantized or copied again",
    )
    ap.add_argument("--arm", choices=["naive", "locus"], help=argparse.SUPPRESS)
    ap.add_argument("--paths", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.arm:
        return run_arm(args)

    import subprocess

    from locus.params import load

    params = load(ROOT / "params.yaml", args.preset)
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    peak = args.peak_tflops or next((v for k, v in PEAK_TFLOPS.items() if k in device.lower()), None)
    if peak is None and device == "cpu":
        peak = measured_bf16_peak_tflops()
        print(f"measured bf16 matmul peak: {peak * 1e3:.0f} GFLOP/s ({torch.get_num_threads()} threads)")
    arms = [("naive", "naive", []), ("locus", "locus", args.set)]
    for spec in args.arm_set:
        name, _, settings = spec.partition(":")
        arms.append((name, "locus", args.set + [x for x in settings.split(",") if x]))
    runs: dict[str, list[dict]] = {name: [] for name, _, _ in arms}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        paths = json.loads(Path(args.reuse).read_text()) if args.reuse else setup(args, params, work)
        (work / "paths.json").write_text(json.dumps(paths))
        for rep in range(args.repeats):  # arms interleaved, so drift in the machine's speed hits each alike
            for name, kind, settings in arms:
                out = work / f"{name}-{rep}"
                out.mkdir()
                cmd = (
                    [
                        sys.executable,
                        __file__,
                        "--arm",
                        kind,
                        "--paths",
                        str(work / "paths.json"),
                        "--out",
                        str(out),
                        "--steps",
                        str(args.steps),
                    ]
                    + (["--preset", args.preset] if args.preset else [])
                    + (["--threads", str(args.threads)] if args.threads else [])
                    + [f"--set={x}" for x in settings]
                )
                subprocess.run(cmd, check=True)
                runs[name].append(json.loads((out / "result.json").read_text()))
    results = {name: median_run(r) for name, r in runs.items()}
    text = table(results, device, peak)
    print(
        f"\n{device}; {args.shape}; {params.quantization.method}; {args.steps} optimizer steps of "
        f"{params.training.per_device_batch_size * params.training.grad_accum_steps} examples "
        f"(max length {params.training.max_seq_length}), domain {args.domain}; "
        f"locus arm: {' '.join(args.set) or 'params as they are'}; threads: {args.threads or torch.get_num_threads()}; "
        f"median of {args.repeats} run(s)\n\n{text}"
    )
    dest = Path(args.results_dir)
    dest.mkdir(parents=True, exist_ok=True)
    tag = ("cuda" if torch.cuda.is_available() else "cpu") + ("" if args.shape == "base" else f"-{args.shape}")
    (dest / f"throughput-{tag}.json").write_text(
        json.dumps(
            {
                "device": device,
                "shape": args.shape,
                "arms": {name: settings for name, _, settings in arms},
                "results": results,
                "table": text,
            },
            indent=1,
        )
    )
    for arm, r in results.items():
        (dest / f"loss-{tag}-{arm}.csv").write_text(
            "step,loss\n" + "".join(f"{i + 1},{v}\n" for i, v in enumerate(r["losses"]))
        )


if __name__ == "__main__":
    main()
