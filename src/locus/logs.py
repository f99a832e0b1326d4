"""Quiet, useful job logs: third-party noise filtered precisely, progress as lines when not on a terminal.

Snakemake and SLURM write each job's stderr to a file, where progress bars become walls of
carriage-return redraws; there Locus prints one line per logged optimizer step instead (step,
loss, tokens/s, ETA; locus.training.loop.StepLog). Filtered, each by its exact text:
- bitsandbytes' "Failed to load CPU gemm_4bit_forward from kernels-community" (an optional
  inference kernel fetched from a hub; Locus never uses it, and it cannot be installed offline);
- progress bars (huggingface_hub, datasets, and any plain tqdm bar, such as transformers' GGUF
  conversion) when stderr is not a terminal;
- transformers' FutureWarnings about `is_gradient_checkpointing` / `gradient_checkpointing_enable`,
  raised inside peft's prepare_model_for_kbit_training (not our call to fix).
"""

from __future__ import annotations

import logging
import sys
import warnings


class _DropMessage(logging.Filter):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


def interactive() -> bool:
    """Whether progress bars make sense: stderr is a terminal."""
    return sys.stderr.isatty()


def quiet_third_party() -> None:
    logging.getLogger("bitsandbytes.backends.cpu.ops").addFilter(
        _DropMessage("Failed to load CPU gemm_4bit_forward from kernels-community")
    )
    for what in ("is_gradient_checkpointing", "gradient_checkpointing_enable"):
        warnings.filterwarnings("ignore", message=f"`{what}` is deprecated", category=FutureWarning)
    if not interactive():
        import os

        # Loading-weights and dataset bars: off in job logs (read at import by huggingface_hub, which
        # transformers follows, and by datasets).
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
        # Bars libraries draw with tqdm itself (e.g. transformers' GGUF conversion in prepare-model).
        os.environ.setdefault("TQDM_DISABLE", "1")
