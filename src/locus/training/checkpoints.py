"""Training checkpoints that are complete or absent, so a killed `locus train` resumes exactly.

transformers' Trainer writes `checkpoint-N/` (adapter safetensors, optimizer.pt, scheduler.pt,
rng_state.pth, trainer_state.json) file by file, so a kill mid-save leaves a directory that looks
like a checkpoint but is not one. Locus points the Trainer at a staging directory and, once the
Trainer has finished a save (`on_save`), writes a marker with the sha256 of every file and a
fingerprint of everything that decides the training trajectory, fsyncs, and renames the directory
into CELL/checkpoints/ (rename is atomic on one filesystem). Only the newest is kept.

On start, the newest checkpoint whose marker, file hashes and fingerprint all match is resumed
with `Trainer.train(resume_from_checkpoint=...)`, which restores the adapter, optimizer,
scheduler, RNG states and data position (trainer.py `_load_from_checkpoint`,
`_load_optimizer_and_scheduler`, `_load_rng_state`, `skip_first_batches`; its torch.load calls use
weights_only=True). Anything else under CELL/checkpoints/ is removed. CELL/checkpoints/ is not a
Snakemake or DVC output, so rerunning a killed job keeps it; the train stage deletes it after the
final adapter is written.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from transformers import TrainerCallback

from locus import io

MARKER = "locus_checkpoint.json"
ANNOUNCE = "checkpoint complete at step "
PREFIX = "checkpoint-"


def checkpoint_dir(cell: str | os.PathLike) -> Path:
    """CELL/checkpoints: complete checkpoints only (the Trainer writes into its .staging/)."""
    return Path(cell) / "checkpoints"


def staging_dir(cell: str | os.PathLike) -> Path:
    return checkpoint_dir(cell) / ".staging"


def fingerprint(params, lr: float, seed: int, model: str, data: str, init: str, w0_file=None) -> str:
    """sha256 over what decides the trajectory: params (but not checkpoint_every), lr, seed, the
    train split and budget, the initial adapter, the base model's config and weight files (and its
    once-quantized W₀ file), the device, library versions.

    Weight files enter by name, size and mtime (hashing 0.5 GB per cell is not worth it): a re-prepared
    model changes them, and a false mismatch only costs a restart from step 0, never a wrong resume.
    """
    import peft
    import torch
    import transformers

    training = params.training.model_dump(exclude={"checkpoint_every"})
    # The budget picks the examples from the (whole, ranked) train split; the device changes the
    # arithmetic, so a CPU checkpoint never resumes on a GPU or the other way round.
    budget = params.data.model_dump(include={"max_train_examples", "max_eval_examples", "short_budget"})
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    h = hashlib.sha256(
        json.dumps(
            {
                "model": params.model.model_dump(),
                "quantization": params.quantization.model_dump(),
                "lora": params.lora.model_dump(),
                "training": training,
                "lr": lr,
                "seed": seed,
                "data": budget,
                "device": device,
                "versions": [torch.__version__, transformers.__version__, peft.__version__],
            },
            sort_keys=True,
        ).encode()
    )
    files = [Path(data) / "train.jsonl", *sorted(Path(init).glob("*")), *sorted(Path(model).glob("*.json"))]
    files = [f for f in files if f.is_file()]
    for f in files:
        h.update(f.name.encode() + io.sha256_file(f).encode())
    for f in [*sorted(Path(model).glob("*.safetensors")), *([Path(w0_file)] if w0_file else [])]:
        st = f.stat()
        h.update(f"{f.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _step(path: Path) -> int:
    return int(path.name[len(PREFIX) :])


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_complete(path: Path, fp: str) -> bool:
    """The marker exists, names this fingerprint, and every file it lists has its recorded sha256."""
    try:
        marker = json.loads((path / MARKER).read_text(encoding="utf-8"))
        return marker["fingerprint"] == fp and all(
            io.sha256_file(path / name) == digest for name, digest in marker["files"].items()
        )
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _discard(path: Path) -> None:
    """Rename, then delete: a kill mid-delete leaves a dot-directory, never a half-deleted checkpoint."""
    trash = path.with_name(f".old-{path.name}")
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(path, trash)
    shutil.rmtree(trash, ignore_errors=True)


def resume_point(cell: str | os.PathLike, fp: str) -> Path | None:
    """The newest complete checkpoint for this fingerprint (None: start at step 0); clear the rest."""
    root = checkpoint_dir(cell)
    if not root.is_dir():
        return None
    for junk in root.glob(".*"):  # staging and half-deleted leftovers of a killed run
        shutil.rmtree(junk, ignore_errors=True)
    found = None
    for path in sorted(root.glob(f"{PREFIX}*"), key=_step, reverse=True):
        if found is None and is_complete(path, fp):
            found = path
        else:
            print(f"discarding {path}: " + ("older" if found else "incomplete, corrupt or from other inputs/params"))
            _discard(path)
    return found


def remove(cell: str | os.PathLike) -> None:
    shutil.rmtree(checkpoint_dir(cell), ignore_errors=True)


class AtomicCheckpoints(TrainerCallback):
    """After each Trainer save: mark the staged checkpoint complete, move it into place, prune."""

    def __init__(self, cell: str | os.PathLike, fp: str):
        self.root, self.staging, self.fp = checkpoint_dir(cell), staging_dir(cell), fp

    def on_step_end(self, args, state, control, **kwargs):
        # No checkpoint after the last step (the Trainer's default): the final adapter is written
        # seconds later and the checkpoint deleted, so that save would only cost time.
        if state.global_step >= state.max_steps:
            control.should_save = False
        return control

    def on_save(self, args, state, control, **kwargs):
        staged = self.staging / f"{PREFIX}{state.global_step}"
        files = sorted(p for p in staged.rglob("*") if p.is_file())
        for f in files:
            _fsync(f)
        marker = {
            "fingerprint": self.fp,
            "step": state.global_step,
            "files": {str(f.relative_to(staged)): io.sha256_file(f) for f in files},
        }
        (staged / MARKER).write_text(json.dumps(marker, indent=1), encoding="utf-8")
        _fsync(staged / MARKER)
        final = self.root / staged.name
        if final.exists():
            _discard(final)
        os.replace(staged, final)
        _fsync(self.root)
        for old in self.root.glob(f"{PREFIX}*"):
            if _step(old) < state.global_step:
                _discard(old)
        # One line per checkpoint in the job's log, once it is complete and in place.
        print(f"{ANNOUNCE}{state.global_step} -> {final}", file=sys.stderr, flush=True)
