"""Stage: full fine-tuning of one (domain, lr, seed) cell — every weight, same data and budget as LoRA.

    locus train-full --model models/base --data results/data/physics --lr 5e-05 --seed 0 \
                     --out results/runs/physics/full_ft/lr=5e-05/seed=0

The base is loaded in float32 whatever `model.dtype` says (fp32 master weights; bf16 autocast on
CUDA), without quantization — NF4 weights
cannot be trained — and every parameter is trainable (embeddings, norms, all linear layers). The
loop is the LoRA stage's own (locus.training.loop.fit): the same Trainer arguments (epochs, batch,
accumulation, schedule, warmup, weight decay, clipping, optimizer, seed and data order), the same
encoding, prompt masking and collator (padding-free included), the same step log and train_loss.
Only the learning rate differs (full FT needs a smaller one; params full_ft.learning_rates).

The model is loaded straight onto the job's GPU when there is one; W₀ is not copied (it is read
back from the model files after training), so memory is the model, its gradients and AdamW state.

Outputs in --out: delta.safetensors — ΔW = W_final − W₀ in float32 for the modules LoRA adapts
(lora.target_modules; keys as in the base, e.g. model.layers.3.self_attn.q_proj.weight), not a
model copy (≈318 MB for SmolLM2 instead of 517 MB); train_log.csv; metrics.json.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from locus import io, options

# Runs the model on the training device: locus.cli gives the job a GPU of its own.
RUNS_ON_GPU = True


def add_arguments(parser) -> None:
    options.add_training_run(parser, out_help="cell directory: delta.safetensors, train_log.csv, metrics.json")


def adapted_weights(model, targets) -> dict:
    """{name: parameter} of the per-layer linear weights LoRA would adapt (lora.target_modules)."""
    from locus.core.keys import parse_key

    found = {
        n: p for n, p in model.named_parameters() if (k := parse_key(n)) and not k["matrix"] and k["module"] in targets
    }
    if not found:
        raise ValueError(f"lora.target_modules {list(targets)}: no per-layer weight of the model matches")
    return found


def run(args, params) -> None:
    import torch
    from safetensors.torch import save_file

    from locus.analysis.updates import plain_weights
    from locus.training.cell_data import start_run
    from locus.training.loop import fit
    from locus.training.modeling import load_base

    if torch.cuda.is_available():
        from locus.resources import full_ft_gpu_shortfall

        if why := full_ft_gpu_shortfall(args.model, *torch.cuda.mem_get_info()):
            raise ValueError(why)
    tokenizer, data = start_run(params, args.model, args.data, args.lr, args.seed)
    # fp32 master weights whatever model.dtype says: in bf16, AdamW steps of lr ≈ 1e-5 on weights of
    # magnitude ≈ 1e-2 fall below half a unit in the last place and round away (bf16 keeps 8 bits).
    master = params.model_copy(update={"model": params.model.model_copy(update={"dtype": "float32"})})
    model = load_base(master, args.model, quantize=False)
    model.requires_grad_(True)
    weights = adapted_weights(model, params.lora.target_modules)
    with tempfile.TemporaryDirectory() as scratch:
        metrics, log = fit(model, tokenizer, data, params, args.lr, args.seed, scratch)

    out = Path(args.out)
    # W₀ is read back from the model files one matrix at a time (exactly the loaded values: the
    # file's weight cast to float32) instead of cloned before training: a 3B model's clone
    # would double its memory. ΔW is taken on the CPU whatever device trained.
    with plain_weights(args.model, master) as w0:
        delta = {n: (p.detach().float().cpu() - torch.from_numpy(w0[n])).contiguous() for n, p in weights.items()}
    with io.atomic_path(out / "delta.safetensors") as tmp:
        save_file(delta, str(tmp), metadata={"what": "W_final - W0, full fine-tuning", "lr": str(args.lr)})
    io.write_text(out / "train_log.csv", log.to_csv())
    io.write_json(out / "metrics.json", metrics | {"dtype": "float32", "quantization": "none"})
    print(
        f"full FT lr={args.lr} seed={args.seed}: {metrics['optimizer_steps']} steps in {metrics['train_seconds']:.1f}s, "
        f"eval loss {metrics['eval_loss_before']:.3f} -> {metrics['eval_loss_after']:.3f}; "
        f"ΔW of {len(delta)} modules -> {out}"
    )
