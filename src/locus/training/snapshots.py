"""Learning-trajectory snapshots: the LoRA tensors every K optimizer steps, saved during training.

CELL/trajectory/step=000005.safetensors holds exactly what PEFT's `save_pretrained` would write to
adapter_model.safetensors at that step (`get_peft_model_state_dict`: the lora_A/lora_B weights,
keys without the adapter name, in the adapter's own dtype) — so the last snapshot is bit-identical
to adapter_final/ and every snapshot is read by the same code (stages/trajectory.py). Only the
adapter is stored, never the base or the optimizer: for SmolLM2-135M at r=16 that is 15.5 MB.
"""

from __future__ import annotations

import re
from pathlib import Path

from transformers import TrainerCallback

from locus import io

DIRNAME = "trajectory"
SNAPSHOT = re.compile(r"^step=(\d+)\.safetensors$")


def snapshot_path(directory: str | Path, step: int) -> Path:
    """trajectory/step=000042.safetensors (zero-padded so that a listing sorts by step)."""
    return Path(directory) / f"step={step:06d}.safetensors"


def list_snapshots(directory: str | Path) -> dict[int, Path]:
    """{optimizer step: file} of the snapshots in `directory`, by step; {} if there is none."""
    directory = Path(directory)
    if not directory.is_dir():
        return {}
    found = {int(m[1]): p for p in directory.iterdir() if (m := SNAPSHOT.match(p.name))}
    return dict(sorted(found.items()))


class AdapterSnapshots(TrainerCallback):
    """Saves the LoRA tensors after every K-th optimizer step and after the last one.

    on_step_end runs after the optimizer and scheduler step, so snapshot N holds the weights that
    N updates produced. Files are written atomically (locus.io); snapshots left over from an earlier
    run — a fresh start, or steps beyond the checkpoint a resumed run restarts from — are removed
    first, so the directory always describes this run.
    """

    def __init__(self, model, directory: str | Path, every: int):
        if every <= 0:
            raise ValueError(f"training.snapshot_every must be > 0 for snapshots, got {every}")
        self.model, self.directory, self.every = model, Path(directory), every

    def save(self, step: int) -> Path:
        from peft import get_peft_model_state_dict
        from safetensors.torch import save_file

        tensors = {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(self.model).items()}
        path = snapshot_path(self.directory, step)
        with io.atomic_path(path) as tmp:
            save_file(tensors, tmp, metadata={"format": "pt", "step": str(step)})
        return path

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            for step, path in list_snapshots(self.directory).items():
                if step > state.global_step:
                    path.unlink()

    def on_step_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero and state.global_step % self.every == 0:
            self.save(state.global_step)

    def on_train_end(self, args, state, control, **kwargs):
        # The final step, when it is not a multiple of K (otherwise it is already saved).
        if state.is_world_process_zero and state.global_step not in list_snapshots(self.directory):
            self.save(state.global_step)


def callbacks(params, model, cell: str | Path) -> list[AdapterSnapshots]:
    """[AdapterSnapshots] writing to CELL/trajectory when training.snapshot_every > 0, else []."""
    every = params.training.snapshot_every
    return [AdapterSnapshots(model, Path(cell) / DIRNAME, every)] if every else []
