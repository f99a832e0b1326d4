"""Stage: train one grid cell (domain, lr, seed) from its initial adapter; save the final adapter.

QLoRA as in the seed experiment: the base is loaded in NF4 with double quantization and bf16
compute (bitsandbytes; works on CPU and CUDA), prepared with `prepare_model_for_kbit_training`,
and the adapter from the init stage is loaded trainable. The loop is the one both arms share
(locus.training.loop: transformers' Trainer; prompt tokens masked, see locus.training.sft_data).
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


def add_arguments(parser) -> None:
    options.add_training_run(parser, out_help="cell directory: adapter_final/, train_log.csv, metrics.json", w0=True)
    parser.add_argument("--init", required=True, help="initial adapter directory")


def run(args, params) -> None:
    tokenizer, data = start_run(params, args.model, args.data, args.lr, args.seed)
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
