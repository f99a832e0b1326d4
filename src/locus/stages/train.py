"""Stage: train one grid cell (domain, method, lr, seed) from its initial adapter; save the final adapter.

QLoRA as in the seed experiment: the base is loaded in NF4 with double quantization and bf16
compute (bitsandbytes; works on CPU and CUDA), prepared with `prepare_model_for_kbit_training`,
and the adapter from the init stage is loaded trainable. The loop is the one both arms share
(locus.training.loop: transformers' Trainer; prompt tokens masked, see locus.training.sft_data).
The eval loss before training is the base model's (the initial adapter has lora_B = 0), scored once
per domain by `locus evaluate` and read from --before; the loss after is scored here, the same way.
Outputs in --out: adapter_final/, train_log.csv (one row per optimizer step), metrics.json.
With training.snapshot_every: K > 0 also trajectory/: the LoRA tensors every K steps (locus.training.snapshots).
While training, --out/checkpoints/ holds the newest complete checkpoint (training.checkpoint_every);
a rerun after a kill resumes from it bit-identically (locus.training.checkpoints), and it is deleted once
the outputs are written. A NaN/inf loss or gradient norm stops the run, keeping that checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from locus import io, options
from locus.training import checkpoints, snapshots
from locus.training.cell_data import start_run
from locus.training.loop import build_model, fit
from locus.training.modeling import nf4_kernel

# Runs the model on the training device: locus.cli gives the job a GPU of its own.
RUNS_ON_GPU = True

# Methods whose initial adapter leaves the base model exactly as it is (lora_B = 0; IA³'s l = 1).
IDENTITY_AT_INIT = ("lora", "ia3")


def add_arguments(parser) -> None:
    options.add_training_run(parser, out_help="cell directory: adapter_final/, train_log.csv, metrics.json", w0=True)
    parser.add_argument("--init", required=True, help="initial adapter directory")
    parser.add_argument(
        "--before",
        default=None,
        help="the domain's eval_base.json (`locus evaluate` of the base alone): the cell's eval loss before "
        "training, since the initial adapter (lora_B = 0) leaves the base unchanged; default: computed here",
    )


def loss_before(path: str | None, eval_counts: dict) -> float | None:
    """The eval loss before training from the base model's score of the same eval split, or None."""
    if path is None:
        return None
    content = io.read_json(path)
    scores = content.get("scores") if isinstance(content, dict) else None
    if not isinstance(scores, dict) or len(scores) != 1:
        raise ValueError(f"{path}: not the score of one eval split (`locus evaluate --domains DOMAIN`)")
    (domain, base), *_ = scores.items()
    if not isinstance(base, dict) or not isinstance(base.get("loss"), float):
        raise ValueError(f"{path}: {domain} has no eval loss")
    if base.get("examples") != eval_counts["examples"]:
        raise ValueError(
            f"{path}: {domain} scored on {base.get('examples')} eval examples, this cell has "
            f"{eval_counts['examples']} (rerun locus evaluate with the same params)"
        )
    return base["loss"]


def run(args, params) -> None:
    tokenizer, data = start_run(params, args.model, args.data, args.lr, args.seed)
    # checked before the model is loaded; a method whose initial adapter changes the model (a random
    # prefix; DoRA's magnitudes, taken from the unquantized base) is scored before training here.
    before = loss_before(args.before, data[1][1]) if params.method_kind() in IDENTITY_AT_INIT else None
    model = build_model(params, args.model, args.init, args.w0)
    out = Path(args.out)
    # Resume from the newest complete checkpoint of a killed run with the same inputs (see
    # locus.training.checkpoints); the Trainer saves into a staging dir that AtomicCheckpoints promotes.
    fp = checkpoints.fingerprint(params, args.lr, args.seed, args.model, args.data, args.init, args.w0)
    resume = checkpoints.resume_point(out, fp)
    try:
        metrics, log = fit(
            model,
            tokenizer,
            data,
            params,
            args.lr,
            args.seed,
            str(checkpoints.staging_dir(out)),
            save_steps=params.training.checkpoint_every,
            resume=resume,
            eval_before=before,
            callbacks=[checkpoints.AtomicCheckpoints(out, fp), *snapshots.callbacks(params, model, out)],
        )
    except FloatingPointError as e:
        kept = checkpoints.resume_point(out, fp)
        raise FloatingPointError(f"{e}; last good checkpoint: {kept or 'none'}; no adapter written") from None
    with io.atomic_path(out / "adapter_final", is_dir=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
    io.write_text(out / "train_log.csv", log.to_csv())
    io.write_json(
        out / "metrics.json",
        metrics
        | {
            "quantization": params.quantization.method,
            "nf4_kernel": nf4_kernel(params),
        },
    )
    checkpoints.remove(out)  # only once every output is in place
    print(
        f"trained lr={args.lr} seed={args.seed}: {metrics['optimizer_steps']} steps in {metrics['train_seconds']:.1f}s, "
        f"eval loss {metrics['eval_loss_before']:.3f} -> {metrics['eval_loss_after']:.3f} -> {out}"
    )
