"""Command-line options that several stages share, each defined once (name, type, help).

A stage's own options stay in its add_arguments; these are the ones whose meaning is the same
wherever they appear: the prepared base model and its once-quantized W₀, and the training run of
one cell (both arms).
"""

from __future__ import annotations

W0_HELP = "W₀ file of `locus quantize-base` (NF4: the base as training computes with it; default: quantize here)"


def add_model(parser, *, w0: bool = False, help: str = "prepared base model directory") -> None:
    """--model (and, with w0, --w0)."""
    parser.add_argument("--model", required=True, help=help)
    if w0:
        parser.add_argument("--w0", default=None, help=W0_HELP)


def add_training_run(parser, *, out_help: str, w0: bool = False) -> None:
    """The options of one cell's training run (train, train-full): model, data, lr, seed, out."""
    add_model(parser, w0=w0)
    parser.add_argument("--data", required=True, help="prepared domain directory (train.jsonl, eval.jsonl)")
    parser.add_argument("--lr", type=float, required=True)
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--out", required=True, help=out_help)
