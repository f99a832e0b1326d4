"""The one training loop, shared by LoRA (stages/train.py) and full fine-tuning (stages/train_full.py).

transformers' `Trainer` with the same arguments for both arms (training_arguments), the same
encoding and prompt masking (locus.training.cell_data, locus.training.sft_data), the same collator (make_collator:
padding, or padding-free rows) and the same step log (StepLog: one record per optimizer step, a
NaN/inf stops the run). `fit` runs it and returns the metrics both arms report.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import torch
from peft import PeftConfig, PeftModel, prepare_model_for_kbit_training
from transformers import (
    DataCollatorForSeq2Seq,
    DataCollatorWithFlattening,
    PrinterCallback,
    TrainerCallback,
    TrainingArguments,
)

from locus import logs
from locus.training import checkpoints
from locus.training.head import ResponseHeadTrainer
from locus.training.modeling import load_base, use_bf16
from locus.training.scoring import eval_batch_size, score_as_trained
from locus.training.sft_data import IGNORE_INDEX


class StepLog(TrainerCallback):
    """Collects one record per logged optimizer step (loss, lr, grad norm); stops on a NaN/inf.

    The check runs in on_log, before the Trainer saves that step's checkpoint, so a non-finite
    loss or gradient norm is never checkpointed (requires logging_nan_inf_filter=False, which
    would otherwise replace a NaN loss by the running mean).
    """

    def __init__(self, progress: bool = False, tokens=lambda: 0):
        """progress: print one line per logged step (step, loss, tokens/s, ETA) — for job logs,
        where a progress bar is a wall of redraws; tokens: a callable giving real tokens so far."""
        self.rows: list[dict] = []
        self.progress, self.tokens, self.start = progress, tokens, time.perf_counter()

    @staticmethod
    def _row(logs: dict, step: int, epoch: float | None) -> dict:
        row = {"step": step, "epoch": round(epoch or 0.0, 4)}
        row.update({k: float(v) for k, v in logs.items() if k in ("loss", "learning_rate", "grad_norm")})
        return row

    def on_train_begin(self, args, state, control, **kwargs):
        # A resumed run restores the earlier steps' logs with the checkpoint's trainer state.
        self.rows = [self._row(h, h["step"], h.get("epoch")) for h in state.log_history if "loss" in h]
        self.start, self.first_step, self.first_tokens = time.perf_counter(), state.global_step, self.tokens()

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            row = self._row(logs, state.global_step, state.epoch)
            for key in ("loss", "grad_norm"):
                if not math.isfinite(row.get(key, 0.0)):
                    raise FloatingPointError(f"{key} is {row[key]} at step {state.global_step}; stopping")
            self.rows.append(row)
            if self.progress:
                self._print(row, state)

    def _print(self, row: dict, state) -> None:
        seconds = time.perf_counter() - self.start
        done = max(state.global_step - self.first_step, 1)
        eta = seconds / done * (state.max_steps - state.global_step)
        rate = (self.tokens() - self.first_tokens) / max(seconds, 1e-9)
        print(
            f"step {state.global_step}/{state.max_steps}  loss {row['loss']:.4f}  lr {row.get('learning_rate', 0):.2e}  "
            f"{rate:,.0f} tokens/s  ETA {eta:,.0f} s",
            file=sys.stderr,
            flush=True,
        )

    def to_csv(self) -> str:
        """CSV that DVC plots read natively: step, epoch, loss, learning_rate, grad_norm."""
        columns = ["step", "epoch", "loss", "learning_rate", "grad_norm"]
        lines = [",".join(columns)] + [",".join(str(r.get(c, "")) for c in columns) for r in self.rows]
        return "\n".join(lines) + "\n"


class CountingCollator:
    """A collator that also counts the positions the model computes (padding included) and the
    real tokens among them, so metrics.json can report padding waste."""

    def __init__(self, collator):
        self.collator, self.positions, self.tokens = collator, 0, 0

    def __call__(self, features):
        batch = self.collator(features)
        self.positions += batch["input_ids"].numel()
        self.tokens += sum(len(f["input_ids"]) for f in features)
        return batch


def make_collator(tokenizer, params) -> CountingCollator:
    """Pad each micro-batch to its longest example (labels padded with -100), or, with
    training.padding_free, concatenate its examples into one row whose position_ids restart at 0
    for each example: transformers derives a block-diagonal causal mask from the restarts
    (masking_utils.find_packed_sequence_indices), so no token attends across examples and no
    position is padding. The loss is the same token-weighted mean either way."""
    if params.training.padding_free:
        return CountingCollator(DataCollatorWithFlattening(separator_id=IGNORE_INDEX))
    return CountingCollator(DataCollatorForSeq2Seq(tokenizer, padding="longest", label_pad_token_id=IGNORE_INDEX))


def build_model(params, model_dir: str, init_dir: str, w0_file=None):
    """The NF4 base prepared for k-bit training, with the initial adapter loaded trainable
    (w0_file: the once-quantized W₀, see load_base)."""
    model = load_base(params, model_dir, w0_file=w0_file)
    model.config.use_cache = False  # as fit() sets it: padding-free rows need the packed-sequence mask
    if params.quantization.method == "nf4":
        model = prepare_model_for_kbit_training(
            model,
            use_gradient_checkpointing=params.training.gradient_checkpointing,
            gradient_checkpointing_kwargs={"use_reentrant": False},
        )
    if PeftConfig.from_pretrained(init_dir).is_prompt_learning:
        # PEFT loads a prompt-learning adapter (prefix tuning) for inference only; its virtual-token
        # table is the whole adapter, so training it is switching its gradient back on.
        model = PeftModel.from_pretrained(model, init_dir, is_trainable=False)
        for p in model.prompt_encoder.parameters():
            p.requires_grad_(True)
        return model
    return PeftModel.from_pretrained(model, init_dir, is_trainable=True)


def training_arguments(params, lr: float, seed: int, output_dir: str, save_steps: float = 0) -> TrainingArguments:
    """Trainer settings from params; save_steps > 0 writes resumable checkpoints into output_dir
    (every N steps, or a fraction < 1 of the run, as transformers reads save_steps)."""
    t = params.training
    return TrainingArguments(
        output_dir=output_dir,
        num_train_epochs=t.epochs,
        max_steps=t.max_steps,
        per_device_train_batch_size=t.per_device_batch_size,
        per_device_eval_batch_size=eval_batch_size(params),
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
        logging_nan_inf_filter=False,  # let StepLog see a NaN/inf loss instead of a running mean
        save_strategy="steps" if save_steps else "no",
        save_steps=save_steps or 500,  # ignored when save_strategy is "no"
        eval_strategy="no",
        report_to=[],
        disable_tqdm=not logs.interactive(),  # StepLog prints one line per step instead
        seed=seed,
        data_seed=seed,
        full_determinism=t.deterministic,  # the Trainer re-seeds with enable_full_determinism
        use_cpu=not torch.cuda.is_available(),
        bf16=use_bf16(params),
        # TF32 for the fp32 matmuls that remain (LoRA, head) on Ampere or newer; None: leave as is.
        tf32=True if torch.cuda.is_available() and torch.cuda.get_device_capability()[0] >= 8 else None,
        dataloader_num_workers=0,
        remove_unused_columns=False,
    )


def fit(
    model,
    tokenizer,
    data,
    params,
    lr: float,
    seed: int,
    output_dir: str,
    *,
    save_steps: float = 0,
    callbacks=(),
    resume: Path | None = None,
    eval_before: float | None = None,
) -> tuple[dict, StepLog]:
    """The one training loop, for LoRA and full fine-tuning alike: transformers' Trainer with
    training_arguments(), make_collator() and a StepLog; eval loss before and after training. The
    loss runs the vocabulary head on response positions only (locus.training.head).

    data: cell_data.load_data()'s ((train, counts), (eval, counts)). Returns the metrics both arms report
    and the step log. resume: a checkpoint directory to continue from (locus.training.checkpoints).
    eval_before: the eval loss of this very model before training when already known — a LoRA
    cell starts as its base (lora_B = 0), so `locus evaluate` scores it once per domain — else
    computed here. Both eval losses are locus.training.scoring.score's response-token mean.
    """
    (train_set, train_counts), (eval_set, eval_counts) = data
    # Training never reads a KV cache, and an (empty) cache makes transformers skip the
    # packed-sequence mask, so padding-free rows would silently attend across examples.
    model.config.use_cache = False
    collator = make_collator(tokenizer, params)
    log = StepLog(progress=not logs.interactive(), tokens=lambda: collator.tokens)
    trainer = ResponseHeadTrainer(
        model=model,
        train_dataset=train_set,
        data_collator=collator,
        args=training_arguments(params, lr, seed, output_dir, save_steps=save_steps),
        callbacks=[log, *callbacks],
    )
    if not logs.interactive():  # its per-step dict lines would repeat StepLog's
        trainer.remove_callback(PrinterCallback)
    if eval_before is None:  # before any training step: the same number whether or not the run resumes
        eval_before = score_as_trained(model, tokenizer, eval_set, params)["loss"]
    collator.positions = collator.tokens = 0  # count the training batches only
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    seconds = time.perf_counter() - start
    padding = 1 - collator.tokens / max(collator.positions, 1)
    eval_after = score_as_trained(model, tokenizer, eval_set, params)["loss"]
    resumed_step = int(resume.name.removeprefix(checkpoints.PREFIX)) if resume else 0
    epochs = params.training.epochs if params.training.max_steps < 0 else None
    # The mean of every step's loss: Trainer's training_loss covers only the steps since a resume.
    losses = [r["loss"] for r in log.rows]
    steps_now = result.global_step - resumed_step
    metrics = {
        "train_loss": sum(losses) / len(losses) if losses else result.training_loss,
        "final_step_loss": log.rows[-1]["loss"] if log.rows else None,
        "eval_loss_before": eval_before,
        "eval_loss_after": eval_after,
        "optimizer_steps": result.global_step,
        # Σ_t lr_t, the learning rate each optimizer step applied (warmup included; locus.core.stats)
        "sum_lr": sum(r.get("learning_rate", 0.0) for r in log.rows),
        "epochs": epochs,
        "train": train_counts,
        "eval": eval_counts,
        "resumed_from_step": resumed_step,
        "train_seconds": round(seconds, 2),  # this process only, when resumed
        "train_tokens_per_second": round(
            train_counts["tokens"] * (epochs or 1) * steps_now / max(result.global_step, 1) / seconds, 1
        ),
        "train_padding_fraction": round(padding, 4),  # of the positions computed in training steps
        "padding_free": params.training.padding_free,
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "device": "cuda" if torch.cuda.is_available() else "cpu",
        "gpus_visible": torch.cuda.device_count(),  # 1 per job unless CUDA_VISIBLE_DEVICES says otherwise
        "bf16_autocast": use_bf16(params),
        "threads": torch.get_num_threads(),
    }
    return metrics, log
