"""Stage: analyse adapters trained elsewhere (any PEFT-based trainer) against their base model:
LoRA (rsLoRA, rank/alpha patterns), DoRA, IA³ and prefix tuning (locus.core.adapters.adapter_kind).

    locus external --model BASE --adapter NAME=DIR [--adapter NAME2=DIR2 ...] [--init NAME=DIR ...]
                   [--base-quantization nf4|none] --out results/external/{name}

BASE is the base model directory the adapters were trained on (safetensors); each DIR is what
PEFT's `save_pretrained` wrote (adapter_config.json + adapter_model.safetensors). Written to --out:

  {NAME}/effective.parquet  per module, the `effective` stage's table: ‖ΔW‖_F, ‖ΔW‖_F/‖W₀‖_F,
                            spectral norm, stable/effective rank, amplification, rank, scaling
  {NAME}/delta.parquet      the seed's Δ statistics that exist for this adapter (see below)
  layers.parquet            per (adapter, layer): effective metrics + seed statistics (charts_external)
  modules.parquet           every adapter's effective.parquet with an `adapter` column
  similarity.parquet        φ of ΔW's top directions between every pair of adapters and module
                            (only when the adapters adapt the same modules)
  report.html, figures/     the adapters side by side, self-contained like the grid's report

No initial snapshot is needed for the effective update: PEFT initialises lora_B to exactly 0
(init_lora_weights True, "gaussian" or "eva"), so the initial ΔW is 0 and the saved s·B·A is the
whole change. The seed's Δ statistics (delta.parquet: mean/var/mean|·|/var|·| of final − initial)
differ: Δ_B = B_final is available for the same reason, but lora_A starts as random Kaiming noise
whose draw is not saved, so Δ_A — and the seed's per-layer numbers, which average A and B — are
unavailable unless `--init NAME=DIR` gives the adapter saved before training. Adapters whose init
does not zero lora_B (PiSSA, OLoRA, LoftQ, CorDA, …) need `--init` for everything. DoRA and IA³ need
none for ΔW either (PEFT starts DoRA's magnitudes at ‖W₀‖_row with lora_B = 0, IA³'s vectors at 1: the
merge starts at W₀); a prefix may start random or at zero, so prefix tuning needs `--init` (its table
is ΔP per layer, locus.core.methods).

W₀ matters for ‖ΔW‖_F/‖W₀‖_F and the amplification: `--base-quantization nf4` is the NF4 round
trip QLoRA trains against, `none` the plain weights in params' model.dtype; the default is params'
quantization.method. Pick what the adapter was trained on; the report states the choice.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import numpy as np
import pandas as pd

from locus import io
from locus.analysis.updates import effective_table
from locus.core.adapters import ADAPTER_FILE, adapter_kind, adapter_tensors, read_adapter_config, read_matrix
from locus.core.stats import STATISTICS, delta_table
from locus.params import check_name
from locus.report import external as charts_external
from locus.report.page import chart_sections, html_page, save_figures

SECTIONS = [
    ("Effective update by layer: size-normalised vs raw ‖ΔW‖_F", "external_profile"),
    ("‖ΔW‖_F / ‖W₀‖_F by layer × module", "external_heatmap"),
    ("Attention vs MLP share of ‖ΔW‖²_F (dashed: share of ‖W₀‖²_F)", "external_attention"),
    ("Seed statistic available without the initial snapshot: lora_B", "external_seed_B"),
]
NEEDS_INIT = """<p class=note>What needs the initial adapter: the effective update ΔW = s·B·A needs
none (PEFT starts lora_B at 0, so the initial ΔW is 0). Of the seed's Δ statistics, lora_B's are
B itself (Δ_B = B − 0); lora_A starts as random Kaiming noise that is not saved, so Δ_A and the
seed's per-layer averages over A and B are <b>unavailable</b> for adapters without an initial
snapshot (column "initial snapshot"; pass <code>--init NAME=DIR</code> to add it).</p>"""


def pairs(values: list[str] | None, flag: str) -> dict[str, Path]:
    """{NAME: DIR} from repeated NAME=DIR arguments; names are file-safe and unique."""
    out: dict[str, Path] = {}
    for value in values or []:
        name, sep, directory = value.partition("=")
        if not sep or not directory:
            raise ValueError(f"{flag} {value!r}: expected NAME=DIR")
        check_name(name, f"{flag} {value!r}: NAME")
        if name in out:
            raise ValueError(f"{flag} {value!r}: {name} given twice")
        out[name] = Path(directory)
    return out


# The tensors whose value before training PEFT fixes, so Δ needs no initial snapshot: lora_B = 0, l = 1.
KNOWN_START = {"B": 0.0, "ia3": 1.0}


def seed_deltas(final: Path, init: Path | None, kind: str) -> pd.DataFrame:
    """The seed's statistics (locus.core.stats) of Δ = final − initial for every per-module tensor
    (lora_A/B, DoRA magnitudes, IA³ vectors); without `init`, of those whose start is known
    (KNOWN_START). Prefix tuning has no per-module tensors: an empty table. kind: adapter_kind's."""
    from safetensors import safe_open

    if kind == "prefix":
        return pd.DataFrame(columns=["layer", "block", "module", "matrix", "n", *STATISTICS])
    modules, _ = adapter_tensors(final)
    keys = [
        entry[m]
        for entry in modules.values()
        for m in sorted(set(entry) - {"layer", "block", "module"})
        if init is not None or m in KNOWN_START
    ]
    with safe_open(final / ADAPTER_FILE, "pt") as f:
        after = {k: read_matrix(f, k) for k in keys}
    if init is None:
        start = {entry[m]: KNOWN_START[m] for entry in modules.values() for m in KNOWN_START if m in entry}
        before = {k: np.full_like(v, start[k]) for k, v in after.items()}
    else:
        with safe_open(init / ADAPTER_FILE, "pt") as f:
            before = {k: read_matrix(f, k) for k in keys}
    return delta_table(before, after)


def adapter_row(name: str, directory: Path, init: Path | None, table: pd.DataFrame, skipped: dict) -> dict:
    c = read_adapter_config(directory)
    targets = c.get("target_modules")
    return {
        "adapter": name,
        "method": adapter_kind(c),
        "directory": str(directory),
        "r": c.get("r", ""),
        "alpha": c.get("lora_alpha", ""),
        "rsLoRA": bool(c.get("use_rslora")),
        "rank/alpha pattern": bool(c.get("rank_pattern") or c.get("alpha_pattern")),
        "init": str(c.get("init_lora_weights", True)),
        "target modules": targets if isinstance(targets, str) else ", ".join(sorted(targets or [])),
        "layers": f"{table.layer.nunique()} ({table.layer.min()}–{table.layer.max()})",
        "modules analysed": len(table),
        "tensors skipped": len(skipped),
        "initial snapshot": "yes" if init is not None else "no (Δ_A unavailable)",
        "‖ΔW‖_F (all modules)": f"{np.sqrt((table.fro**2).sum()):.4g}",
        "mean ‖ΔW‖_F/‖W₀‖_F": f"{table.rel_fro.mean():.3e}",
    }


def similarity(
    adapters: dict[str, Path], inits: dict[str, Path], modules: pd.DataFrame, k: int, kinds: dict[str, str]
) -> pd.DataFrame | None:
    """φ between every pair of adapters (locus.core.similarity), when they adapt the same modules from B = 0."""
    from locus.core.similarity import similarity_table

    sets = modules.groupby("adapter").apply(lambda m: frozenset(zip(m.layer, m.module)), include_groups=False)
    if len(adapters) < 2 or sets.nunique() != 1 or inits or set(kinds.values()) != {"lora"}:
        return None
    table = similarity_table({(name, 0.0, 0): d for name, d in adapters.items()}, k=k)
    table = table.rename(columns={"domain_a": "adapter_a", "domain_b": "adapter_b"})
    return table.drop(columns=["lr_a", "seed_a", "lr_b", "seed_b"])


def body(
    args, quantization: str, rows: list[dict], skipped: list[dict], sim: pd.DataFrame | None, sections: str
) -> str:
    w0 = (
        "NF4 round trip (bitsandbytes, as QLoRA trains against it)"
        if quantization == "nf4"
        else "the plain base weights (no quantization)"
    )
    facts = {
        "Base model": str(args.model),
        "W₀": f"{w0} — --base-quantization {quantization}",
        "Generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    out = [
        "<p>Adapters trained elsewhere, analysed by Locus: the effective update ΔW of every adapted module "
        "(LoRA: s·B·A with s = α/r, α/√r with rsLoRA, per-module r and α from rank_pattern/alpha_pattern; "
        "DoRA and IA³: the merged weight minus W₀, as PEFT merges it; prefix tuning: the change of each "
        "layer's prefix keys and values), measured against the base weights W₀, and compared side by side.</p>",
        "<dl>" + "".join(f"<dt>{k}</dt><dd>{html.escape(v)}</dd>" for k, v in facts.items()) + "</dl>",
        NEEDS_INIT,
        "<h2>Adapters</h2>",
        pd.DataFrame(rows).to_html(index=False),
    ]
    if skipped:
        out += ["<h2>Tensors not analysed</h2>", pd.DataFrame(skipped).to_html(index=False)]
    out.append(sections)
    if sim is not None:
        mean = sim.groupby(["adapter_a", "adapter_b"])[["phi", "baseline"]].mean().round(3).reset_index()
        out += [
            "<h2>Subspace similarity φ of ΔW between adapters (LoRA §7.2)</h2>",
            "<p>Mean over modules of φ between the top-k left singular vectors; baseline: random subspaces.</p>",
            mean.to_html(index=False),
        ]
    return "\n".join(out)


def add_arguments(parser) -> None:
    parser.add_argument(
        "--model", required=True, help="base model directory the adapters were trained on (safetensors)"
    )
    parser.add_argument(
        "--adapter",
        action="append",
        required=True,
        metavar="NAME=DIR",
        help="a PEFT adapter directory and its label; repeat to compare several",
    )
    parser.add_argument(
        "--init",
        action="append",
        metavar="NAME=DIR",
        help="optional: the adapter NAME saved before training (adds Δ of lora_A)",
    )
    parser.add_argument(
        "--base-quantization",
        choices=["nf4", "none"],
        default=None,
        help="W₀ as the adapter was trained: NF4 round trip or plain weights (default: params)",
    )
    parser.add_argument("--out", required=True, help="output directory, e.g. results/external/NAME")


def run(args, params) -> None:
    adapters, inits = pairs(args.adapter, "--adapter"), pairs(args.init, "--init")
    if unknown := sorted(set(inits) - set(adapters)):
        raise ValueError(f"--init {unknown[0]}=…: no --adapter {unknown[0]}=… to pair it with")
    quantization = args.base_quantization or params.quantization.method
    w0_params = params.with_quantization(quantization)
    out = Path(args.out)
    rows, skipped, frames, deltas = [], [], [], []
    kinds = {name: adapter_kind(read_adapter_config(directory)) for name, directory in adapters.items()}
    for name, directory in adapters.items():
        table = effective_table(directory, args.model, w0_params, init=inits.get(name))
        delta = seed_deltas(directory, inits.get(name), kinds[name])
        for fname, df in (("effective", table), ("delta", delta)):
            io.write_parquet(out / name / f"{fname}.parquet", df)
        passed = adapter_tensors(directory)[1] if kinds[name] != "prefix" else {}
        skipped += [{"adapter": name, "tensor": k, "reason": why} for k, why in passed.items()]
        rows.append(adapter_row(name, directory, inits.get(name), table, passed))
        frames.append(table.assign(adapter=name))
        deltas.append(delta.assign(adapter=name))
    modules = pd.concat(frames, ignore_index=True)
    layers = charts_external.layer_table(modules, pd.concat(deltas, ignore_index=True))
    sim = similarity(adapters, inits, modules, params.analysis.similarity_k, kinds)
    for fname, df in (("modules", modules), ("layers", layers), ("similarity", sim)):
        if df is not None:
            io.write_parquet(out / f"{fname}.parquet", df)
    figures, notes = charts_external.figures(modules, layers)
    save_figures(figures, out / "figures")
    sections, specs = chart_sections(figures, notes, SECTIONS)
    title = f"Locus: adapters trained elsewhere ({', '.join(adapters)})"
    io.write_text(out / "report.html", html_page(title, body(args, quantization, rows, skipped, sim, sections), specs))
    print(f"{len(adapters)} adapter(s), {len(modules)} modules, W₀ {quantization} -> {out}/report.html")
