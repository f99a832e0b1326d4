"""The GPU suite's correctness checks (benchmarks/gpu_suite.py calls them after its pipeline cell).

Each returns {"check": what, "ok": bool | None, "detail": str}; None = not applicable here (a
CUDA-only question asked on a CPU). They use the cell the suite just ran (its model, data, W₀ file
and outputs) and the loaders the stages use, so a lent GPU answers, in one run:
  placement    every loader puts the model on the job's GPU (NF4 base, plain base, evaluation model,
               training model, full-FT model); the Trainer sees n_gpu == 1
  dtypes       under the Trainer's autocast, a LoRA matmul's output and the head's logits are bf16
               on CUDA (fp32 on CPU, where autocast is off by default); the residual stream's dtype
               is reported
  nf4          W₀ quantized on the training device (locus quantize-base) equals the CPU round trip
               (bitsandbytes on CPU) on 3 modules, bit for bit (max |Δ| reported)
  full FT      the full-FT arm wrote a finite, non-zero ΔW for every adapted module
  eval loss    `locus evaluate`'s loss of the saved adapter (a fresh process) vs the train stage's
               eval loss after training (the model in memory); the same scoring function
  resume       with training.deterministic, a train job killed after a checkpoint and rerun ends
               with an uninterrupted run's adapter, bit for bit (else the max |Δ| is reported)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import torch

# `locus train` in a subprocess that SIGKILLs itself right after checkpoint N is complete.
KILL_AFTER_CHECKPOINT = textwrap.dedent("""
    import os, signal, sys
    from locus.training import checkpoints
    from locus.cli import main
    step, on_save = int(sys.argv[1]), checkpoints.AtomicCheckpoints.on_save
    def patched(self, args, state, control, **kwargs):
        on_save(self, args, state, control, **kwargs)
        if state.global_step == step:
            os.kill(os.getpid(), signal.SIGKILL)
    checkpoints.AtomicCheckpoints.on_save = patched
    sys.exit(main(sys.argv[2:]))
""")


def result(check: str, ok: bool | None, detail: str) -> dict:
    return {"check": check, "ok": ok, "detail": detail}


def placement(params, model_dir: str, init_dir: str) -> dict:
    from locus.analysis.evaluation import load_for_eval
    from locus.training.loop import build_model, training_arguments
    from locus.training.modeling import load_base, model_device

    want = model_device()
    plain = params.with_quantization("none")
    loaders = {
        "NF4 base": lambda: load_base(params, model_dir),
        "plain base (full FT)": lambda: load_base(params, model_dir, quantize=False),
        "evaluation, NF4": lambda: load_for_eval(params, model_dir, init_dir),
        "evaluation, plain": lambda: load_for_eval(plain, model_dir, init_dir),
        "training model": lambda: build_model(params, model_dir, init_dir),
    }
    found = {}
    for name, load in loaders.items():
        model = load()
        found[name] = sorted({str(p.device) for p in model.parameters()} | {str(b.device) for b in model.buffers()})
        del model
        torch.cuda.empty_cache() if torch.cuda.is_available() else None
    n_gpu = training_arguments(params, 1e-3, 0, "/tmp/locus-gpu-checks").n_gpu
    wrong = {k: v for k, v in found.items() if v != [want]}
    expected_gpus = 1 if torch.cuda.is_available() else 0
    detail = f"all on {want}; Trainer n_gpu {n_gpu}" if not wrong else f"expected {want}: {wrong}; n_gpu {n_gpu}"
    return result("placement of every stage's model", not wrong and n_gpu == expected_gpus, detail)


def dtypes(params, model_dir: str, init_dir: str, data_dir: str) -> dict:
    """One real Trainer step of the train stage's model and loss, with hooks on a decoder layer and the head."""
    from locus.training.cell_data import load_data
    from locus.training.head import ResponseHeadTrainer
    from locus.training.loop import build_model, make_collator, training_arguments
    from locus.training.modeling import load_tokenizer, use_bf16

    tokenizer = load_tokenizer(model_dir)
    (train_set, _), _ = load_data(tokenizer, data_dir, params)
    model = build_model(params, model_dir, init_dir)
    seen = {}

    def record(name):
        def hook(module, inputs, output):
            out = output[0] if isinstance(output, tuple) else output
            seen.setdefault(name, str(out.dtype).removeprefix("torch."))

        return hook

    base = model.get_base_model()
    lora_a = next(name for name, _ in model.named_modules() if name.endswith("lora_A.default"))
    handles = [
        base.get_output_embeddings().register_forward_hook(record("head logits")),
        model.get_submodule(lora_a).register_forward_hook(record("first LoRA A output")),
        base.get_decoder().layers[0].register_forward_hook(record("residual stream after layer 0")),
    ]
    args = training_arguments(params, 1e-3, 0, "/tmp/locus-gpu-checks")
    args.max_steps = 1
    trainer = ResponseHeadTrainer(
        model=model, args=args, train_dataset=train_set, data_collator=make_collator(tokenizer, params)
    )
    trainer.train()
    for h in handles:
        h.remove()
    # The matmuls run in bf16 under autocast; the residual stream stays float32 either way
    # (prepare_model_for_kbit_training keeps norms and embeddings in float32): reported, not judged.
    want = "bfloat16" if use_bf16(params) else "float32"
    ok = seen["head logits"] == seen["first LoRA A output"] == want
    return result("dtypes under the Trainer's autocast", ok, f"matmuls expected in {want}: {seen}")


def nf4_round_trip(params, model_dir: str, w0_file: str, modules: int = 3) -> dict:
    """W₀ from the training device vs bitsandbytes' CPU round trip of the same weights."""
    from safetensors import safe_open

    from locus.analysis.updates import plain_weights
    from locus.training import nf4
    from locus.training.modeling import DTYPES

    with safe_open(w0_file, "pt") as f:
        made_on = (f.metadata() or {}).get("device")
        names = sorted(f.keys())[:: max(1, len(f.keys()) // modules)][:modules]
        stored = {n: f.get_tensor(n) for n in names}
    q = params.quantization
    worst, equal = 0.0, True
    with plain_weights(model_dir, params) as raw:
        for name in names:
            weight = torch.from_numpy(raw[name])
            cpu = nf4.roundtrip(weight, DTYPES[q.compute_dtype], q.double_quant)
            equal &= torch.equal(cpu, stored[name])
            worst = max(worst, float((cpu.float() - stored[name].float()).abs().max()))
    detail = f"W₀ made on {made_on} vs CPU round trip, {len(names)} modules: max |Δ| {worst:.3g}"
    return result("NF4 round trip, training device vs CPU", equal if made_on != "cpu" else None, detail)


def full_ft(cell: Path) -> dict:
    from safetensors.torch import load_file

    delta = load_file(cell / "delta.safetensors")
    metrics = json.loads((cell / "metrics.json").read_text())
    bad = [k for k, v in delta.items() if not torch.isfinite(v).all() or not v.any()]
    detail = (
        f"{len(delta)} modules on {metrics['device']}, {metrics['optimizer_steps']} steps; non-finite or zero: {bad}"
    )
    return result("full fine-tuning writes ΔW", bool(delta) and not bad, detail)


def eval_loss(cell: Path, domain: str) -> dict:
    ours = json.loads((cell / "eval.json").read_text())["scores"][domain]["loss"]
    trained = json.loads((cell / "metrics.json").read_text())["eval_loss_after"]
    gap = abs(ours - trained) / trained
    return result(
        "evaluate loss = train stage's eval loss after", gap < 2e-3, f"{ours:.5f} vs {trained:.5f} (rel. {gap:.1e})"
    )


def resume(params_file: Path, init: str, paths: dict, work: Path, steps: int) -> dict:
    """With training.deterministic: true, a train job killed after the checkpoint at step ⌊steps/2⌋
    and rerun must end with the adapter of an uninterrupted run, bit for bit (torch.equal; the max
    |Δ| is reported either way): the README's determinism claim, on this device."""
    import yaml
    from safetensors.torch import load_file

    settings = yaml.safe_load(params_file.read_text())
    at = max(1, steps // 2)
    settings["training"].update(checkpoint_every=at, deterministic=True)
    resumed_params = work / "resume.yaml"
    resumed_params.write_text(yaml.safe_dump(settings))

    def train(out: Path) -> list[str]:
        return ["train", "--params", str(resumed_params), "--model", paths["model"], "--data", paths["data"],
                "--init", init, "--lr", "0.001", "--seed", "0", "--out", str(out)]  # fmt: skip

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    reference, out = work / "uninterrupted", work / "resumed"
    runs = [
        subprocess.run([sys.executable, "-m", "locus", *train(reference)], env=env, capture_output=True, text=True),
        subprocess.run(
            [sys.executable, "-c", KILL_AFTER_CHECKPOINT, str(at), *train(out)], env=env, capture_output=True
        ),
        subprocess.run([sys.executable, "-m", "locus", *train(out)], env=env, capture_output=True, text=True),
    ]
    if runs[0].returncode or runs[1].returncode != -9 or runs[2].returncode:
        codes = [r.returncode for r in runs]
        return result("kill and resume", False, f"exits {codes} (want 0, -9, 0): {runs[2].stderr[-300:]}")
    metrics = json.loads((out / "metrics.json").read_text())
    got, want = (load_file(d / "adapter_final" / "adapter_model.safetensors") for d in (out, reference))
    worst = max(float((got[k].float() - want[k].float()).abs().max()) for k in want)
    identical = all(torch.equal(got[k], want[k]) for k in want)
    detail = f"deterministic, resumed at step {metrics['resumed_from_step']} of {metrics['optimizer_steps']}: " + (
        "bit-identical adapter" if identical else f"max |Δ| {worst:.3g} vs the uninterrupted run"
    )
    return result("kill and resume", metrics["resumed_from_step"] == at and identical, detail)
