# Validate params (plus an optional preset overlay) once, before any rule runs, and build every
# path from locus.layout so Snakemake, DVC and the stages agree on the layout.
import os

from snakemake.exceptions import WorkflowError

from locus import code_deps, layout, pipeline
from locus.params import load
from locus.cli import host_gpus
from locus.resources import model_memory_mb
from locus.training.records import find_raw

PARAMS_FILE = config.get("params", "params.yaml")
PRESET = config.get("preset")
PARAMS = load(PARAMS_FILE, PRESET).for_method()  # the main method's view; every method: layout.method_cells
# Extra flags only when not the defaults, so commands read exactly as dvc.yaml's.
STAGE_ARGS = " ".join(
    ([f"--params {PARAMS_FILE}"] if PARAMS_FILE != "params.yaml" else [])
    + ([f"--preset {PRESET}"] if PRESET else [])
)
RESULTS = PARAMS.results_dir
LOCAL_GPUS = host_gpus()  # NVIDIA GPUs on this machine (without importing torch)


def pattern(name):
    """A locus.layout path pattern with params filled in and the grid coordinates left as wildcards."""
    return layout.pattern(name, PARAMS)


MODEL = pattern("model_dir")
W0 = pattern("w0_file")
LOGS = pattern("logs_dir")
DATA = pattern("data_dir")
CELL = pattern("cell_dir")
INIT = pattern("init_dir")
REPORT = f"{RESULTS}/report.html"


wildcard_constraints:
    domain=r"[A-Za-z0-9_-]+",
    lr=r"[0-9.e+-]+",
    seed=r"-?\d+",
    method=r"(?!full_ft/)[A-Za-z0-9_-]+",  # runs/{domain}/full_ft/ is the full fine-tuning arm


def code(command):
    """The source files `locus <command>` imports (derived, never listed: locus.code_deps), so
    editing any of them reruns exactly the jobs that run it."""
    return code_deps.code_files(command)


def tracked(stage):
    """The params values `stage` depends on (its dvc.yaml `params:` keys; locus.pipeline), so that
    editing one reruns exactly the jobs that use it, as in DVC. A job of one method (the {method}
    wildcard) tracks that method's own `methods` entry only (pipeline.per_method)."""
    if pipeline.per_method(stage):
        return lambda wildcards: pipeline.tracked_params(PARAMS, stage, wildcards.method)
    return pipeline.tracked_params(PARAMS, stage)


def raw_dataset(wildcards):
    return str(find_raw(PARAMS.data.raw_dir, wildcards.domain))


def every_cell(pattern):
    """The main method's cells (the main map)."""
    return [
        pattern.format(cell=layout.cell_dir(PARAMS, d, lr, s)) for d, lr, s in layout.cells(PARAMS)
    ]


def every_method_cell(pattern):
    """Every method's cells (the methods section); [] when `methods` holds the main method alone."""
    if len(PARAMS.methods) < 2:
        return []
    return [
        pattern.format(cell=layout.cell_dir(PARAMS, d, lr, s, method=m)) for m, d, lr, s in layout.method_cells(PARAMS)
    ]


def model_threads(kind="default"):
    """Threads of a job that runs the model (Snakemake exports OMP_NUM_THREADS = threads, default 1,
    and torch obeys it). Locally, a train-kind job gets an equal share of --cores among the grid's
    cells (at least 1): on 2 cores two one-thread cells side by side train 1.2x faster than one
    two-thread cell after the other, and each job's single-threaded start-up (imports, loading)
    overlaps another's work (docs/performance.md, Throughput). Other model jobs are start-up bound: one thread. On a
    machine with GPUs the share is among the GPUs: each model job holds a GPU of its own while it
    runs (locus.cli.claim_gpu), so with one GPU they run one at a time with every core.
    On a cluster a job gets the CPUs its SLURM job asks for."""
    c = PARAMS.cluster
    if not workflow.local_exec:
        return c.train_cpus if kind == "train" else c.cpus
    if kind != "train":
        return 1
    try:
        cores = workflow.cores
    except WorkflowError:  # no --cores given (e.g. a dry run)
        return 1
    cells = len(layout.method_cells(PARAMS))
    # With GPUs each model job holds one of its own (locus.cli.claim_gpu): as many side by side as GPUs.
    return max(1, cores // min(LOCAL_GPUS or cells, cells))


def cluster_resources(kind="default"):
    """SLURM resources from params.yaml's `cluster:` section (used by the slurm profile only), by kind:

      train    runs the model on the training device (train, evaluate, represent, full FT, the NF4
               quantization): the train_* values and, with cluster.gpus_per_train_job > 0, a GPU
      load     loads the whole base on a CPU (prepare-model, init-adapter): cpus/runtime_min
      default  reads tables or one matrix at a time: cpus/mem_mb/runtime_min
      full_ft  train_full: a train-kind job asking for 18 bytes per parameter (fp32 AdamW state),
               on cluster.full_ft_gpu_type when set (SLURM cannot ask for GPU memory by amount)
    train and load jobs get at least the memory the model needs (locus.resources: 2.5 × its bytes
    in model.dtype plus the runtime), evaluated when the job is submitted. Empty strings are left
    out, so the cluster's defaults apply; the plugin turns gpu/gpu_model into --gpus.
    """
    c = PARAMS.cluster
    full_ft = kind == "full_ft"  # a train-kind job that holds fp32 weights, gradients and AdamW state
    train = kind in ("train", "full_ft")
    floor = c.train_mem_mb if train else c.mem_mb
    res = {
        "cpus_per_task": c.train_cpus if train else c.cpus,
        "mem_mb": floor if kind == "default" else lambda wildcards: model_memory_mb(floor, PARAMS, MODEL, full_ft),
        "runtime": c.train_runtime_min if train else c.runtime_min,
        "slurm_partition": c.partition,
        "slurm_account": c.account,
        "slurm_extra": c.slurm_extra,
    }
    if train and c.gpus_per_train_job:
        res["gpu"] = c.gpus_per_train_job
        res["gpu_model"] = (full_ft and c.full_ft_gpu_type) or c.gpu_type
    return {k: v for k, v in res.items() if v != ""}


# Cheap steps run on the submitting machine instead of waiting in the queue.
localrules:
    all,
    delta,
    aggregate,
    report,
