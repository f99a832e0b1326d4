"""Stage: train one grid cell (domain, lr, seed) from its initial adapter; save the final adapter.

QLoRA as in the seed experiment: the base is loaded in NF4 with double quantization and bf16
compute (bitsandbytes; works on CPU and CUDA), prepared with `prepare_model_for_kbit_training`,
and the adapter from the init stage is loaded trainable. The loop is transformers' `Trainer`
with a padding collator that pads labels with -100; prompt tokens are masked (see sft_data).
Outputs in --out: adapter_final/, train_log.csv (one row per optimizer step), metrics.json.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path

import torch
from datasets import Dataset
from peft import PeftModel, prepare_model_for_kbit_training
from transformers import DataCollatorForSeq2Seq, Trainer, TrainerCallback, TrainingArguments

from locus import io
from locus.modeling import load_base, load_tokenizer, seed_everything
from locus.records import DataError, read_records
from locus.sft_data import IGNORE_INDEX, encode_all


class StepLog(TrainerCallback):
    """Collects one record per logged optimizer step (loss, lr, grad norm)."""

    def __init__(self):
        self.rows: list[dict] = []

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            row = {"step": state.global_step, "epoch": round(state.epoch or 0.0, 4)}
            row.update({k: float(v) for k, v in logs.items() if k in ("loss", "learning_rate", "grad_norm")})
            if not math.isfinite(row["loss"]):
                raise FloatingPointError(f"loss is {row['loss']} at step {state.global_step}; stopping")
            self.rows.append(row)

    def to_csv(self) -> str:
        """CSV that DVC plots read natively: step, epoch, loss, learning_rate, grad_norm."""
        columns = ["step", "epoch", "loss", "learning_rate", "grad_norm"]
        lines = [",".join(columns)] + [",".join(str(r.get(c, "")) for c in columns) for r in self.rows]
        return "\n".join(lines) + "\n"


def load_split(tokenizer, path: Path, params) -> tuple[Dataset, dict]:
    t = params.training
    records = read_records(path)
    enc = encode_all(tokenizer, records, t.max_seq_length, t.overlength)
    if not enc.examples:
        raise DataError(f"{path}: no example left after applying max_seq_length={t.max_seq_length}")
    counts = {
        "examples": len(enc.examples),
        "truncated": enc.n_truncated,
        "dropped": enc.n_dropped,
        "tokens": sum(len(e["input_ids"]) for e in enc.examples),
        "response_tokens": sum(sum(lab != IGNORE_INDEX for lab in e["labels"]) for e in enc.examples),
    }
    return Dataset.from_list(enc.examples), counts


def build_model(params, model_dir: str, init_dir: str):
    model = load_base(params, model_dir)
    if params.quantization.method == "nf4":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=params.training.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    return PeftModel.from_pretrained(model, init_dir, is_trainable=True)


def training_arguments(params, lr: float, seed: int, output_dir: str) -> TrainingArguments:
    t = params.training
    return TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.per_device_batch_size,
        per_device_eval_batch_size=t.per_device_batch_size * 2,
        gradient_accumulation_steps=t.grad_accum_steps,
        learning_rate=lr,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_ratio,  # a float < 1 is a fraction of the total steps in transformers 5
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        optim=t.optimizer,
        activation_checkpointing=t.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},
        logging_steps=1,
        save_strategy="no",
        eval_strategy="no",
        report_to=[],
        seed=seed,
        data_seed=seed,
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )


def add_arguments(parser) -> None:
    parser.add_argument("--model", required=True, help="prepared base model directory")
    parser.add_argument("--data", required=True, help="prepared domain directory (train.jsonl, eval.jsonl)")
    parser.add_argument("--init", required=True, help="initial adapter directory")
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help="cell directory: adapter_final/, train_log.csv, metrics.json")


def run(args, params) -> None:
    if not 0 < args.lr <= 1:
        raise ValueError(f"--lr {args.lr} is outside (0, 1]")
    seed_everything(args.seed)
    tokenizer = load_tokenizer(args.model)
    train_set, train_counts = load_split(tokenizer, Path(args.data) / "train.jsonl", params)
    eval_set, eval_counts = load_split(tokenizer, Path(args.data) / "eval.jsonl", params)
    if len(train_set) < params.training.per_device_batch_size:
        raise DataError(f"{args.data}/train.jsonl: {len(train_set)} examples, fewer than one batch "
                        f"(training.per_device_batch_size={params.training.per_device_batch_size})")
    model = build_model(params, args.model, args.init)
    log = StepLog()
    collator = DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=IGNORE_INDEX)
    with tempfile.TemporaryDirectory() as scratch:
        trainer = Trainer(
            model=model, args=training_arguments(params, args.lr, args.seed, scratch),
            train_dataset=train_set, eval_dataset=eval_set, data_collator=collator, callbacks=[log],
        )
        eval_before = trainer.evaluate()["eval_loss"]
        start = time.perf_counter()
        result = trainer.train()
        seconds = time.perf_counter() - start
        eval_after = trainer.evaluate()["eval_loss"]

    out = Path(args.out)
    with io.atomic_path(out / "adapter_final", is_dir=True) as tmp:
        model.save_pretrained(tmp, safe_serialization=True)
    io.write_text(out / "train_log.csv", log.to_csv())
    epochs = params.training.epochs if params.training.max_steps < 0 else None
    metrics = {
        "train_loss": result.training_loss,
        "final_step_loss": log.rows[-1]["loss"] if log.rows else None,
        "eval_loss_before": eval_before,
        "eval_loss_after": eval_after,
        "optimizer_steps": result.global_step,
        "epochs": epochs,
        "train": train_counts,
        "eval": eval_counts,
        "train_seconds": round(seconds, 2),
        "train_tokens_per_second": round(train_counts["tokens"] * (epochs or 1) / seconds, 1),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "quantization": params.quantization.method,
    }
    io.write_json(out / "metrics.json", metrics)
    print(f"trained lr={args.lr} seed={args.seed}: {result.global_step} steps in {seconds:.1f}s, "
          f"eval loss {eval_before:.3f} -> {eval_after:.3f} -> {out}")
