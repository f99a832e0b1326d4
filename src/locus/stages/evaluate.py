"""Stage: score a model on held-out eval splits -> eval.json (locus.training.scoring for the formulas).

    locus evaluate --model models/base --adapter CELL/adapter_final --out CELL/eval.json
    locus evaluate --model models/base --domains physics --out results/runs/physics/eval_base.json

With --adapter: the cell's final adapter on its base, quantized as in training. Without: the base
model alone, which is also the model *before* training (the initial adapter has lora_B = 0), so
"before" is computed once per domain instead of once per cell. The splits are each domain's
prepared eval.jsonl (results/data/{domain}/, capped at data.max_eval_examples), encoded exactly as
in training (prompt masked, training.max_seq_length and the over-length policy applied).
Output: {"model", "adapter", "scores": {domain: {loss, accuracy, tokens, examples}}, "seconds"}.
"""

from __future__ import annotations

import time

from locus import io, options
from locus.layout import data_dir
from locus.params import check_name

# Runs the model on the training device: locus.cli gives the job a GPU of its own.
RUNS_ON_GPU = True


def add_arguments(parser) -> None:
    options.add_model(parser, w0=True)
    parser.add_argument("--adapter", default=None, help="adapter directory to evaluate (default: the base alone)")
    parser.add_argument(
        "--domains", default=None, help="comma-separated eval domains (default: params evaluation.domains)"
    )
    parser.add_argument("--out", required=True, help="eval.json to write")


def run(args, params) -> None:
    import torch

    from locus.analysis.evaluation import load_for_eval
    from locus.training.cell_data import load_split
    from locus.training.modeling import load_tokenizer
    from locus.training.scoring import score_as_trained

    domains = (
        [check_name(d, "--domains") for d in args.domains.split(",")]
        if args.domains
        else list(params.evaluation.domains)
    )
    if not domains:
        raise ValueError("no eval domain: set evaluation.domains in params.yaml or pass --domains")
    missing = [d for d in domains if not (data_dir(params, d) / "eval.jsonl").exists()]
    if missing:
        raise FileNotFoundError(f"{data_dir(params, missing[0]) / 'eval.jsonl'}: not prepared (locus prepare-data)")
    torch.manual_seed(0)  # nothing is random in eval mode; fixed anyway for reproducibility
    start = time.perf_counter()
    tokenizer = load_tokenizer(args.model)
    model = load_for_eval(params, args.model, args.adapter, args.w0)
    scores = {}
    for d in domains:
        dataset, _ = load_split(tokenizer, data_dir(params, d) / "eval.jsonl", params, "max_eval_examples")
        scores[d] = score_as_trained(model, tokenizer, dataset, params)
    seconds = round(time.perf_counter() - start, 2)
    io.write_json(
        args.out,
        {"model": str(args.model), "adapter": args.adapter and str(args.adapter), "scores": scores, "seconds": seconds},
    )
    print(
        f"evaluated {args.adapter or 'the base model'} on {', '.join(domains)} in {seconds:.1f}s: "
        + ", ".join(f"{d} loss {s['loss']:.3f} acc {s['accuracy']:.3f}" for d, s in scores.items())
        + f" -> {args.out}"
    )
