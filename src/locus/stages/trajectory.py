"""Stage: the per-layer metrics of every snapshot of one cell's learning trajectory -> trajectory.parquet.

    locus trajectory --model models/base --init results/adapter_init/seed=0 --final CELL/adapter_final \
                     --snapshots CELL/trajectory --out CELL/trajectory.parquet

One row per (step, layer) with exactly the columns of layers.parquet (stages/aggregate.by_layer):
the seed's four statistics of Δ = snapshot − adapter_init averaged over the layer's matrices
(locus.core.stats), and the layer's effective update ΔW = s·B·A (locus.core.effective: fro, rel_fro,
attention shares) with W₀ as training saw it (locus.analysis.updates.BaseWeights, from --w0). A snapshot holds
only the LoRA tensors, so it is read as a PEFT adapter with the cell's adapter_config.json (which
gives r, α and the scaling); the last snapshot is adapter_final itself, so the last step's rows
equal what `locus effective` + `locus aggregate` give for the cell.

Each base weight W₀ (an NF4 round trip for QLoRA, the expensive part) is computed once and used
for every snapshot: the snapshots are streamed module by module in step (all open at once).
"""

from __future__ import annotations

import os
import tempfile
from contextlib import ExitStack
from pathlib import Path

import pandas as pd
from safetensors.numpy import load_file

from locus import io, options
from locus.analysis.grid import by_layer
from locus.analysis.trajectory import THRESHOLD, formed_step, rank_stability
from locus.analysis.updates import BaseWeights
from locus.core.adapters import load_adapter
from locus.core.effective import ADAPTER_FILE, iter_updates, read_adapter_config, update_metrics
from locus.core.stats import delta_table
from locus.training.snapshots import list_snapshots

PLACEHOLDER_CELL = {"domain": "", "lr": 0.0, "seed": 0}  # by_layer groups by cell; this table is one cell


def as_adapter(snapshot: Path, config_dir: Path, stack: ExitStack) -> Path:
    """A PEFT adapter directory that is a view of one snapshot: links to the snapshot's tensors and
    to the cell's adapter_config.json (the snapshot stores tensors only). Removed with `stack`."""
    view = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="locus-snapshot-")))
    os.symlink(snapshot.resolve(), view / ADAPTER_FILE)
    os.symlink((config_dir / "adapter_config.json").resolve(), view / "adapter_config.json")
    return view


def module_rows(
    snapshots: dict[int, Path], init: Path, config_dir: Path, model_dir, params, w0_file=None
) -> pd.DataFrame:
    """Per (step, module): rank, scaling and the metrics of locus.core.effective, as effective.parquet has them."""
    rows = []
    with ExitStack() as stack, BaseWeights(model_dir, params, w0_file) as base:
        streams = {step: iter_updates(as_adapter(path, config_dir, stack), init) for step, path in snapshots.items()}
        for per_step in zip(*streams.values(), strict=True):  # strict: every snapshot has every module
            module_path = per_step[0][0]
            w0 = base[module_path + ".weight"]
            for step, (path, info, upd) in zip(streams, per_step):
                if path != module_path:
                    raise ValueError(f"snapshot step {step} adapts {path} where the others adapt {module_path}")
                info = {k: v for k, v in info.items() if k != "init_zero"}
                rows.append({"step": step} | info | update_metrics(upd, w0, r=info["rank"]))
    # effective_table's row order, so per-layer sums add in the same order (bit-identical last step)
    return pd.DataFrame(rows).sort_values(["step", "layer", "module"], kind="stable").reset_index(drop=True)


def trajectory_table(
    snapshots: dict[int, Path], init: Path, config_dir: Path, model_dir, params, w0_file=None
) -> pd.DataFrame:
    """One row per (step, layer): layers.parquet's columns for the adapter at each snapshot step."""
    if not snapshots:
        raise FileNotFoundError("no snapshots (step=N.safetensors) to analyse")
    effective = module_rows(snapshots, init, config_dir, model_dir, params, w0_file)
    initial = load_adapter(init)
    frames = []
    for step, path in snapshots.items():
        deltas = delta_table(initial, load_file(path)).assign(**PLACEHOLDER_CELL)
        modules = effective[effective.step == step].drop(columns="step").assign(**PLACEHOLDER_CELL)
        frames.append(by_layer(deltas, modules).drop(columns=list(PLACEHOLDER_CELL)).assign(step=step))
    table = pd.concat(frames, ignore_index=True)
    return table[["step", *[c for c in table.columns if c != "step"]]].astype({"step": "int64"})


def add_arguments(parser) -> None:
    options.add_model(parser, w0=True)
    parser.add_argument("--init", required=True, help="adapter directory before training")
    parser.add_argument(
        "--final",
        required=True,
        help="adapter directory after training (its adapter_config.json scales every snapshot)",
    )
    parser.add_argument("--snapshots", required=True, help="the cell's trajectory/ directory of step=N.safetensors")
    parser.add_argument("--out", required=True, help="trajectory.parquet to write")


def run(args, params) -> None:
    snapshots = list_snapshots(args.snapshots)
    if not snapshots:
        raise FileNotFoundError(
            f"{args.snapshots}: no step=N.safetensors snapshots (was the cell trained "
            f"with training.snapshot_every > 0?)"
        )
    read_adapter_config(args.final)  # fail here, naming --final, rather than on a snapshot's link to it
    for path in snapshots.values():  # likewise a broken snapshot: named here, not as its temporary view
        io.check_safetensors(path)
    table = trajectory_table(snapshots, Path(args.init), Path(args.final), args.model, params, args.w0)
    io.write_parquet(args.out, table)
    metric = params.report.metric
    formed = formed_step(rank_stability(table, metric))
    print(
        f"{len(snapshots)} snapshots (steps {min(snapshots)}..{max(snapshots)}) × {table.layer.nunique()} layers; "
        f"{metric} layer ranking within ρ ≥ {THRESHOLD} of the final one from step {formed} -> {args.out}"
    )
