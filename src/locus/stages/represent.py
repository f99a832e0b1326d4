"""Stage: the representation change of one cell, layer by layer -> representation.parquet.

    locus represent --model models/base --adapter CELL/adapter_final --data results/data/cpp \
                    --out CELL/representation.parquet

The cell's final adapter on its base, loaded and prepared as in training (NF4 when quantization
says so; eval mode), reads the domain's eval split (capped at data.max_eval_examples, encoded as in
training); per decoder layer: rep_change, rep_change_local and the tokens compared
(locus.analysis.representation has the definitions). A separate stage rather than part of `train`,
so that changing the analysis never retrains a cell.
"""

from __future__ import annotations

from pathlib import Path

from locus import io, options

# Runs the model on the training device: locus.cli gives the job a GPU of its own.
RUNS_ON_GPU = True


def add_arguments(parser) -> None:
    options.add_model(parser, w0=True)
    parser.add_argument("--adapter", required=True, help="the cell's trained adapter directory")
    parser.add_argument("--data", required=True, help="prepared domain directory (its eval.jsonl is read)")
    parser.add_argument("--out", required=True, help="representation.parquet to write")


def run(args, params) -> None:
    import time

    from locus.analysis.evaluation import load_for_eval
    from locus.analysis.representation import representation_change
    from locus.training.cell_data import load_split
    from locus.training.modeling import load_tokenizer, use_bf16
    from locus.training.scoring import eval_batch_size

    start = time.perf_counter()
    tokenizer = load_tokenizer(args.model)
    dataset, _ = load_split(tokenizer, Path(args.data) / "eval.jsonl", params, "max_eval_examples")
    model = load_for_eval(params, args.model, args.adapter, args.w0)
    table = representation_change(model, tokenizer, dataset, eval_batch_size(params), bf16=use_bf16(params))
    io.write_parquet(args.out, table)
    top = table.loc[table.rep_change_local.idxmax()]
    print(
        f"representation change over {table.tokens.iloc[0]} tokens in {time.perf_counter() - start:.1f}s; "
        f"largest layer-alone change 1 − CKA = {top.rep_change_local:.2e} at layer {int(top.layer)} -> {args.out}"
    )
