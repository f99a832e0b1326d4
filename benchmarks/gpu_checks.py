"""The GPU suite's correctness checks (benchmarks/gpu_suite.py calls them after its pipeline cell).

Each returns {"check": what, "ok": bool | None, "detail": str}; None = not applicable here (a
CUDA-only question asked on a CPU). They use the cell the suite just ran (its model, data, W₀ file
and outputs) and the loaders the stages use, so a lent GPU answers, in one run:
  placement    the evaluation loaders put the whole model on the job's GPU, NF4 and plain (they load
               the base through load_base, as every stage does); the Trainer sees n_gpu == 1
  dtypes       on the training model (build_model; every parameter and buffer on the job's GPU too),
               under the Trainer's autocast, a LoRA matmul's output and the head's logits are bf16
               on CUDA (fp32 on CPU, where autocast is off by default); the residual stream's dtype
               is reported
  nf4          the W₀ that training multiplied by (locus quantize-base stores the train job's own
               dequantized NF4 layers) equals bitsandbytes' quantize/dequantize kernels run directly
               on the training device on the checkpoint's weights, on 3 modules, bit for bit: the
               same kernels on the same input leave no tolerance (bitsandbytes' CPU round trip is
               reported beside it, not judged: another device's kernels may round otherwise)
  full FT      the full-FT arm's ΔW is finite and non-zero in every adapted module (its
               effective.parquet: ‖ΔW‖_F per module, so the ΔW file is not read a third time)
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

import numpy as np
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


def devices(model) -> list[str]:
    return sorted({str(p.device) for p in model.parameters()} | {str(b.device) for b in model.buffers()})


def placement(params, model_dir: str, init_dir: str) -> dict:
    from locus.analysis.evaluation import load_for_eval
    from locus.training.loop import training_arguments
    from locus.training.modeling import model_device

    want = model_device()
    plain = params.with_quantization("none")
    loaders = {  # the training model's placement is the dtypes check's (it builds that model anyway)
        "evaluation, NF4": lambda: load_for_eval(params, model_dir, init_dir),
        "evaluation, plain": lambda: load_for_eval(plain, model_dir, init_dir),
    }
    found = {}
    for name, load in loaders.items():
        model = load()
        found[name] = devices(model)
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
    from locus.training.modeling import load_tokenizer, model_device, use_bf16

    tokenizer = load_tokenizer(model_dir)
    (train_set, _), _ = load_data(tokenizer, data_dir, params)
    model = build_model(params, model_dir, init_dir)
    placed = devices(model)
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
    ok = seen["head logits"] == seen["first LoRA A output"] == want and placed == [model_device()]
    detail = f"training model on {placed}; matmuls expected in {want}: {seen}"
    return result("dtypes under the Trainer's autocast", ok, detail)


def nf4_on_device(params, model_dir: str, w0_file: str, modules: int = 3) -> dict:
    """W₀ as the train job computed with (the W₀ file) vs bitsandbytes' own NF4 kernels on this device.

    Transformers loads the checkpoint in the compute dtype and bitsandbytes' Params4bit quantizes it
    on the device (quantize_4bit: NF4, blocks of 64, double quantization as params say); the train
    job multiplies by dequantize_4bit of those codes. Doing the same two calls here, directly, on the
    checkpoint's tensors must give the stored W₀ exactly. The CPU kernels' answer is reported too."""
    from safetensors import safe_open

    from locus.training import nf4
    from locus.training.modeling import DTYPES, model_device

    device, q = model_device(), params.quantization
    with safe_open(w0_file, "pt") as f:
        made_on = (f.metadata() or {}).get("device")
        names = sorted(f.keys())[:: max(1, len(f.keys()) // modules)][:modules]
        stored = {n: f.get_tensor(n) for n in names}
    raw = {}
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(str(path), "pt") as f:
            raw |= {n: f.get_tensor(n) for n in names if n in f.keys()}
    compute = DTYPES[q.compute_dtype]
    equal, worst, worst_cpu = True, 0.0, 0.0
    for name in names:
        here = nf4.roundtrip(raw[name].to(device), compute, q.double_quant).cpu()
        equal &= torch.equal(here, stored[name])
        worst = max(worst, float((here.float() - stored[name].float()).abs().max()))
        if device != "cpu":
            cpu = nf4.roundtrip(raw[name], compute, q.double_quant)
            worst_cpu = max(worst_cpu, float((cpu.float() - stored[name].float()).abs().max()))
    detail = f"W₀ made on {made_on}, bitsandbytes' kernels on {device}, {len(names)} modules: max |Δ| {worst:.3g}" + (
        f" (CPU kernels: max |Δ| {worst_cpu:.3g}, not judged)" if device != "cpu" else ""
    )
    return result("NF4 W₀ = bitsandbytes' kernels on the training device", made_on == device and equal, detail)


def full_ft(cell: Path) -> dict:
    import pandas as pd

    table = pd.read_parquet(cell / "effective.parquet")
    metrics = json.loads((cell / "metrics.json").read_text())
    bad = table.loc[~(np.isfinite(table.fro) & (table.fro > 0)), ["layer", "module"]].values.tolist()
    detail = (
        f"{len(table)} modules on {metrics['device']}, {metrics['optimizer_steps']} steps, ‖ΔW‖_F "
        f"{table.fro.min():.3g}–{table.fro.max():.3g}; non-finite or zero: {bad}"
    )
    return result("full fine-tuning writes ΔW", len(table) > 0 and not bad, detail)


def eval_loss(cell: Path, domain: str) -> dict:
    ours = json.loads((cell / "eval.json").read_text())["scores"][domain]["loss"]
    trained = json.loads((cell / "metrics.json").read_text())["eval_loss_after"]
    gap = abs(ours - trained) / trained
    return result(
        "evaluate loss = train stage's eval loss after", gap < 2e-3, f"{ours:.5f} vs {trained:.5f} (rel. {gap:.1e})"
    )


RESUME_STEPS = 4  # a checkpoint, a kill and a resume need no more: 3 deterministic runs of 4, 2 and 2 steps


def resume(params_file: Path, init: str, paths: dict, work: Path, steps: int) -> dict:
    """With training.deterministic: true, a train job killed after the checkpoint at step ⌊n/2⌋
    (n = min(steps, RESUME_STEPS)) and rerun must end with the adapter of an uninterrupted run, bit
    for bit (torch.equal; the max |Δ| is reported either way): the README's determinism claim, on
    this device."""
    import yaml
    from safetensors.torch import load_file

    settings = yaml.safe_load(params_file.read_text())
    steps = min(steps, RESUME_STEPS)
    at = max(1, steps // 2)
    t = settings["training"]
    settings["data"]["max_train_examples"] = steps * t["per_device_batch_size"] * t["grad_accum_steps"]
    t.update(checkpoint_every=at, deterministic=True)
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
