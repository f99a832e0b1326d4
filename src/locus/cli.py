"""`locus <stage> ...`: the one command line both Snakemake and DVC call.

Every stage loads and validates params first (`--params`, `--preset`), then runs.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
import time
from pathlib import Path

# Every module of locus/stages is a command, named after it (full_ft_effective -> full-ft-effective):
# adding a stage is adding its module.
STAGES = {
    m.name.replace("_", "-"): f"locus.stages.{m.name}"
    for m in pkgutil.iter_modules([str(Path(__file__).parent / "stages")])
    if not m.name.startswith("_")
}


def host_gpus() -> int:
    """NVIDIA GPUs the driver lists (without importing torch, which every stage would then pay)."""
    listed = Path("/proc/driver/nvidia/gpus")
    return len(list(listed.iterdir())) if listed.is_dir() else 0


def several_gpus() -> str | None:
    """Why this job must not run (one line), or None: it would see several GPUs (CUDA_VISIBLE_DEVICES
    listing more than one) or be one of several processes (torchrun's WORLD_SIZE > 1). Either makes
    the Trainer train on all of them — DataParallel or DDP — multiplying the batch, and Locus runs
    one process on one device per cell."""
    visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if len(visible) > 1:
        return (
            f"CUDA_VISIBLE_DEVICES={','.join(visible)} shows {len(visible)} GPUs to one job: the Trainer would "
            f"train on all of them and multiply the batch by {len(visible)}; give each job one GPU "
            f"(e.g. CUDA_VISIBLE_DEVICES={visible[0]})"
        )
    if (world := int(os.environ.get("WORLD_SIZE", "1") or 1)) > 1:
        return (
            f"WORLD_SIZE={world}: a multi-process launch (torchrun) would multiply the batch by {world}; "
            "Locus trains one process per cell (run the cells as separate jobs instead)"
        )
    return None


def gpu_unchosen() -> bool:
    """Whether nobody has chosen this job's GPU yet: no CUDA_VISIBLE_DEVICES (user, SLURM, or this
    process) and not one of torchrun's processes."""
    return "CUDA_VISIBLE_DEVICES" not in os.environ and "LOCAL_RANK" not in os.environ


_CLAIMED: list[int] = []  # the open lock file of this process's GPU: held until the process exits


def gpu_locks_dir() -> Path:
    """Where jobs on this host record which GPU each holds (LOCUS_GPU_LOCKS, else the temp dir)."""
    import tempfile

    return Path(os.environ.get("LOCUS_GPU_LOCKS") or Path(tempfile.gettempdir()) / "locus-gpu-locks")


def claim_gpu(poll_s: float = 2.0) -> str:
    """The GPU (its index, for CUDA_VISIBLE_DEVICES) this job runs its model on: the first one no
    other `locus` job on this host holds, held until this process ends (an flock, which the kernel
    releases however the process ends). Local runs then spread over a host's GPUs — Snakemake's
    parallel jobs, `dvc queue start -j N` — and wait, saying so, rather than share one: two 3B jobs
    on one GPU can exhaust its memory."""
    import fcntl

    gpus = host_gpus()
    locks = gpu_locks_dir()
    locks.mkdir(parents=True, exist_ok=True)
    said = False
    while True:
        for gpu in range(gpus):
            fd = os.open(locks / f"gpu{gpu}.lock", os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            _CLAIMED.append(fd)
            if gpus > 1 or said:
                print(
                    f"locus: {gpus} GPU(s) here; this job uses GPU {gpu} (CUDA_VISIBLE_DEVICES chooses)",
                    file=sys.stderr,
                )
            return str(gpu)
        if not said:
            print(f"locus: every GPU here is held by another locus job ({locks}); waiting for one", file=sys.stderr)
            said = True
        time.sleep(poll_s)


def runs_without_bitsandbytes(argv: list[str]) -> bool:
    """Whether this stage never calls bitsandbytes: with no NVIDIA GPU here (or none made visible:
    CUDA_VISIBLE_DEVICES=""), a stage given the once-quantized W₀ (`--w0`) under
    `quantization.cpu_kernel: dequantize_once` loads the stored weights instead of quantizing
    (locus.training.modeling.load_base), and nothing else in it quantizes. Importing bitsandbytes costs ≈ 2 s per process (it imports torch's compiler) and
    PEFT imports it whenever it is installed, so the `locus` command keeps it out of such a job."""
    if "--w0" not in argv or (host_gpus() and os.environ.get("CUDA_VISIBLE_DEVICES") != ""):
        return False
    from locus.params import ParamsError, load

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--params", default="params.yaml")
    pre.add_argument("--preset", default=None)
    known, _ = pre.parse_known_args(argv[1:])
    try:
        q = load(known.params, known.preset).quantization
    except ParamsError:
        return False  # reported by main, naming the key
    return q.method == "nf4" and q.cpu_kernel == "dequantize_once"


def main(argv: list[str] | None = None) -> int:
    """Run one stage. argv None: this process is the `locus` command itself (console script or
    `python -m locus`), and a job that needs no bitsandbytes runs without importing it; a caller
    passing argv shares its process, which is left as it is."""
    if argv is None and runs_without_bitsandbytes(sys.argv[1:]):
        sys.modules.setdefault("bitsandbytes", None)  # imports of it fail; PEFT then treats it as absent
    argv = sys.argv[1:] if argv is None else argv
    from locus.logs import quiet_third_party

    quiet_third_party()  # before any stage imports transformers, peft or bitsandbytes
    # One GPU per job: on a multi-GPU host the Trainer would multiply the batch by the GPU count
    # (or wrap the model in DataParallel) and silently change the experiment. Several visible GPUs
    # or a multi-process launch are refused; a user's single-GPU CUDA_VISIBLE_DEVICES is respected.
    if refusal := several_gpus():
        print(f"locus: error: {refusal}", file=sys.stderr)
        return 2
    # Build only the chosen stage's parser: importing every stage would pull torch into `locus delta`.
    chosen = argv[0] if argv and argv[0] in STAGES else None
    stage_module = importlib.import_module(STAGES[chosen]) if chosen else None
    if gpu_unchosen() and not getattr(stage_module, "RUNS_ON_GPU", False):
        os.environ["CUDA_VISIBLE_DEVICES"] = "0"  # a stage that never runs the model: any one GPU
    parser = argparse.ArgumentParser(prog="locus", description=__doc__)
    sub = parser.add_subparsers(dest="stage", required=True, metavar="STAGE")
    for name, module_name in STAGES.items():
        p = sub.add_parser(name, help=(module_name.rsplit(".", 1)[-1]))
        p.add_argument("--params", default="params.yaml", help="params file (default: params.yaml)")
        p.add_argument("--preset", default=None, help="overlay presets/NAME.yaml, e.g. smoke")
        p.add_argument("--debug", action="store_true", help="show the traceback of an error (or LOCUS_DEBUG=1)")
        p.add_argument(
            "--experiment",
            action="store_true",
            help="a single DVC experiment: the grid's LR list becomes the scalar `lr`",
        )
        p.add_argument(
            "--method",
            default=None,
            help="the fine-tuning method (a key of params `methods`) this job is about; default: params `method`",
        )
        if name == chosen:
            stage_module.add_arguments(p)
    args = parser.parse_args(argv)

    from locus.io import one_line
    from locus.params import ParamsError, load

    try:
        params = load(args.params, args.preset).for_method(args.method)
        if args.experiment:
            params = params.as_experiment()
    except (ParamsError, ValueError) as e:  # ValueError: --method names no method of params
        print(f"locus {args.stage}: error: {one_line(e)}", file=sys.stderr)
        return 2
    if os.environ.get("SLURM_JOB_ID") and not params.cluster.gpus_per_train_job:
        # A SLURM node that does not isolate GPUs would still show them: 0 GPUs asked means the CPU.
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    if gpu_unchosen() and host_gpus():  # a model stage, and neither the user, SLURM nor torchrun chose
        os.environ["CUDA_VISIBLE_DEVICES"] = claim_gpu()
    debug = args.debug or os.environ.get("LOCUS_DEBUG") == "1"
    try:
        stage_module.run(args, params)
    # OSError: a missing file, or a full disk (ENOSPC) while writing; outputs are never partial.
    except (ValueError, OSError, RuntimeError, ArithmeticError) as e:
        if debug:
            raise
        print(f"locus {args.stage}: error: {one_line(e)}", file=sys.stderr)
        return 1
    except Exception as e:  # a library's own error type: still one line, the traceback on request
        if debug:
            raise
        print(f"locus {args.stage}: error: {type(e).__name__}: {one_line(e)} (--debug shows where)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
