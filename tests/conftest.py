"""Shared fixtures: a tiny random Llama with a tiny byte-level tokenizer (built offline, in ms)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # random_model

RECORDS = [
    {"instruction": f"What is {a} plus {b}?", "response": f"{a} + {b} = {a + b}. Answer: {a + b}"}
    for a in range(1, 9)
    for b in range(1, 5)
]


def build_tiny_model(path: Path, layers: int = 3) -> Path:
    """benchmarks/random_model.py's `tiny` shape, its tokenizer trained on RECORDS."""
    from random_model import build

    return build(
        path,
        "tiny",
        [r["instruction"] + " " + r["response"] for r in RECORDS],
        vocab_size=320,
        num_hidden_layers=layers,
    )


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_real_data_model(tmp_path_factory) -> Path:
    """The tiny random Llama, its tokenizer trained on the first records of every data/raw domain:
    for pipeline runs on the real data where the wiring, not the model, is under test."""
    from random_model import build, raw_texts

    texts = [t for raw in sorted((REPO / "data" / "raw").glob("*.jsonl")) for t in raw_texts(raw, limit=200)]
    path = tmp_path_factory.mktemp("tiny_real_data") / "model"
    return build(path, "tiny", texts, vocab_size=2048, max_position_embeddings=1024)


def write_params(path: Path, raw_dir: Path, results: Path, **overrides) -> Path:
    """A params file for tests: the default schema with a tiny grid and small budgets."""
    params = {
        "results_dir": str(results),
        "grid": {"domains": ["arith"], "learning_rates": [0.001], "seeds": [0]},
        "data": {"raw_dir": str(raw_dir), "eval_fraction": 0.2},
        "lora": {"r": 4, "alpha": 8},
        "training": {"per_device_batch_size": 2, "grad_accum_steps": 2, "max_seq_length": 64},
    }
    for section, values in overrides.items():
        if isinstance(values, dict):
            params.setdefault(section, {}).update(values)
        else:
            params[section] = values
    path.write_text(yaml.safe_dump(params))
    return path


def write_raw(raw: Path, domain: str = "arith", records: list[dict] = RECORDS) -> Path:
    """raw/{domain}.jsonl with `records` (the directory is made if needed); returns raw."""
    raw.mkdir(parents=True, exist_ok=True)
    (raw / f"{domain}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return raw


@pytest.fixture
def arith_raw(tmp_path) -> Path:
    return write_raw(tmp_path / "raw")


REPO = Path(__file__).resolve().parents[1]


def gpu_visible() -> bool:
    """Whether the `locus` stages and in-process models of this test run would use a GPU (an NVIDIA
    GPU here, not hidden by CUDA_VISIBLE_DEVICES=""), read without importing torch."""
    from locus.cli import host_gpus

    return bool(host_gpus()) and os.environ.get("CUDA_VISIBLE_DEVICES") != ""


def pytest_collection_modifyitems(config, items):
    """A test's directory is its kind: tests/integration -> `integration`, tests/cluster -> `cluster`.
    Longest first (the smoke run's files in SMOKE_RUN_ORDER, the SLURM cluster, the other pipeline
    runs, then unit tests), so that `make test`'s two workers are never left with a long one at the end.
    A test marked `cpu_only` checks CPU behaviour (bit-identical reruns, the CPU NF4 kernel): on a
    host with a visible GPU it is skipped, saying so (CUDA_VISIBLE_DEVICES="" runs it on the CPU)."""

    def kind(item) -> str:
        return item.path.relative_to(REPO / "tests").parts[0]

    on_gpu = gpu_visible()
    for item in items:
        if kind(item) in ("integration", "cluster"):
            item.add_marker(getattr(pytest.mark, kind(item)))
        marker = item.get_closest_marker("cpu_only")
        if on_gpu and marker:
            why = marker.args[0] if marker.args else "checks CPU behaviour"
            item.add_marker(
                pytest.mark.skip(reason=f'cpu_only ({why}); a GPU is visible: set CUDA_VISIBLE_DEVICES="" to run it')
            )

    def rank(item) -> tuple:
        if item.path.name in SMOKE_RUN_ORDER:
            return (0, SMOKE_RUN_ORDER.index(item.path.name))
        return ({"cluster": 1, "integration": 2}.get(kind(item), 3), 0)

    items.sort(key=rank)  # stable: collection order inside each rank


def pytest_configure(config):
    """Under pytest-xdist, each worker's torch (in process, and in the `locus`/DVC commands it
    starts) gets its share of the cores: two workers with two threads each on 2 cores spend their
    time spinning (tests/unit: 84 s -> 52 s wall, 160 -> 91 CPU s). Snakemake jobs keep the
    threads their rules declare; an OMP_NUM_THREADS set by the user wins."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, len(os.sched_getaffinity(0)) // workers)))


def pytest_xdist_make_scheduler(config, log):
    """`make test` (pytest-xdist, `--dist loadscope --no-loadscope-reorder`): one unit of work per
    file, so a file's module fixtures are built once, and one for the three files that share the
    smoke run, so it is run once; units go to the workers in the order sorted above."""
    from xdist.scheduler import LoadScopeScheduling

    class ByFile(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "smoke_run" if Path(path).name in SMOKE_RUN_ORDER else path

    return ByFile(config, log)


# What a pipeline run needs from the repository (the package itself is installed in the venv).
PIPELINE_FILES = ["Snakefile", "workflow", "dvc.yaml", "params.yaml", "presets", "data/raw", "src"]
# The DVC repository's own settings: copied over a clone (which has .dvc/) so uncommitted edits count.
DVC_FILES = [".dvc/config", ".dvcignore"]


def copy_repo(dst: Path, files: list[str] = PIPELINE_FILES) -> Path:
    """The working tree's pipeline files copied into `dst` (a new directory, or a clone to update),
    so integration runs never touch the checkout."""
    for item in files:
        src, target = REPO / item, dst / item
        target.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, target, dirs_exist_ok=True)
        else:
            shutil.copy2(src, target)
    return dst


def run_tool(cwd: Path, *cmd: str, timeout: int = 1500, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command with the venv's bin/ first on PATH (where `locus`, snakemake and dvc live);
    `env` adds variables."""
    env = {**os.environ, **(env or {}), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    for var in ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"):  # CI machines may have no git identity
        env.setdefault(var, "Locus tests")
    for var in ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"):
        env.setdefault(var, "tests@locus.invalid")
    return subprocess.run(list(cmd), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def start_until(cmd: list[str], pattern: str, **popen) -> tuple[subprocess.Popen, re.Match]:
    """Start `cmd` in its own process group and return (process, match) as soon as a line of its
    output (stdout and stderr) matches the regex `pattern`: the output is read as it comes, so no
    polling and no timing; the rest of it is drained. A hang guard, not a measurement: a run that
    neither matches nor ends within 10 minutes is killed."""
    proc = subprocess.Popen(
        cmd, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **popen
    )
    guard = threading.Timer(600, lambda: proc.poll() is None and os.killpg(proc.pid, signal.SIGKILL))
    guard.daemon = True  # never keeps the test process alive
    guard.start()
    seen = []
    for line in proc.stdout:
        seen.append(line)
        found = re.search(pattern, line)
        if found:
            threading.Thread(target=proc.stdout.read, daemon=True).start()  # never block the writer
            return proc, found
    raise AssertionError(f"{cmd[0]} ended (exit {proc.wait()}) before printing /{pattern}/:\n" + "".join(seen)[-4000:])


@contextlib.contextmanager
def edited(path: Path):
    """Edit a source file as a developer would (new content, newer mtime); restore both after."""
    original, stat = path.read_bytes(), path.stat()
    path.write_bytes(original + b"\n# edited by a test\n")  # mtime: now, newer than every output
    try:
        yield path
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def stages_importing(path: str) -> set[str]:
    """Names of the pipeline stages (DVC stages = Snakemake rules) whose command imports `path`."""
    from locus.code_deps import code_files
    from locus.pipeline import STAGES

    return {s.name for s in STAGES if path in code_files(s.locus_command)}


def probe_modules() -> list[str]:
    """Source files to edit in the staleness tests: for each stage, the file outside src/locus/stages
    that the fewest stages import (the transitive imports, easy to miss by hand; the stage module
    itself when it imports nothing else of its own), plus one file no stage imports."""
    from locus.code_deps import code_files
    from locus.pipeline import STAGES

    every = sorted({f for s in STAGES for f in code_files(s.locus_command)})

    def specificity(f: str) -> tuple:
        return ("/stages/" in f, len(stages_importing(f)), f)

    probes = {min(code_files(s.locus_command), key=specificity) for s in STAGES}
    unused = sorted(
        str(p.relative_to(REPO)) for p in (REPO / "src/locus").rglob("*.py") if str(p.relative_to(REPO)) not in every
    )
    return sorted(probes) + unused[:1]


def shell_commands(dry_run_output: str) -> set[str]:
    """The `locus` commands a `snakemake -n -p` run would execute, whitespace-normalised, logging cut."""
    prefix = "Shell command: "
    return {
        " ".join(line[len(prefix) :].split("2>&1")[0].split())
        for line in dry_run_output.splitlines()
        if line.startswith(prefix + "locus ")
    }


def snakemake_reasons(dry_run_output: str) -> dict[str, set[str]]:
    """{reason: rules} from a dry run's closing summary, e.g. "updated input files": {"train"}."""
    reasons, current = {}, None
    for line in dry_run_output.split("Reasons:", 1)[-1].splitlines()[1:]:
        if line.startswith("        ") and current:
            reasons[current] = {r.strip() for r in line.split(",")}
        elif line.strip().endswith(":"):
            current = line.strip()[:-1]
    return reasons


def argv(stage: str, *leading: str, **options) -> list[str]:
    """A `locus <stage>` command line: the stage, any leading arguments (e.g. ["--params", P]), then
    `--key value` for each option (key_name -> --key-name)."""
    pairs = [(f"--{key.replace('_', '-')}", str(value)) for key, value in options.items()]
    return [stage, *leading, *(x for pair in pairs for x in pair)]


def cell_argv(stage: str, params, cell: Path, **options) -> list[str]:
    """`locus <stage>` on a trained cell: --params, its adapter_init as --init and adapter_final as
    --final, then `options` (e.g. model=, metrics=, out=)."""
    return argv(stage, params=params, init=cell / "adapter_init", final=cell / "adapter_final", **options)


def on_cell(stage: str, params, cell: Path, **options) -> None:
    """Run cell_argv(...) in-process; fails the test unless it exits 0."""
    from locus.cli import main

    command = cell_argv(stage, params, cell, **options)
    assert main(command) == 0, command


def ok(run: subprocess.CompletedProcess) -> str:
    """A finished command's output; fails the test with its tail if it failed."""
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return run.stdout + run.stderr


def ran_stages(dvc_output: str) -> list[str]:
    """The stages a `dvc repro` / `dvc exp run` ran, in order."""
    return re.findall(r"Running stage '([^']+)'", dvc_output)


SMOKE_REPORT = "results/smoke/report.html"
# The files that share the smoke run, in the order they must run: test_pipeline only reads it,
# test_adopt hands it to DVC, test_dvc then runs DVC on it (its push/pull deletes and restores it).
# One unit of work for pytest-xdist (pytest_xdist_make_scheduler): one worker runs them, in this order.
SMOKE_RUN_ORDER = ["test_pipeline.py", "test_adopt.py", "test_dvc.py"]


def smoke_clone(root: Path) -> Path:
    """A fresh `git clone` of the repository at `root`, as a user gets it (no `dvc init`: .dvc/ is
    committed), with the working tree's pipeline files on top (uncommitted edits are what is
    tested) and the smoke preset merged into params.yaml (DVC reads params.yaml only). Committed."""
    from locus.params import load

    ok(run_tool(REPO, "git", "clone", "-q", str(REPO), str(root)))
    copy_repo(root, PIPELINE_FILES + DVC_FILES)
    with contextlib.chdir(REPO):  # presets/ is found from the working directory, as the stages find it
        merged = load("params.yaml", "smoke").model_dump(mode="json")
    (root / "params.yaml").write_text(yaml.safe_dump(merged, sort_keys=False))
    ok(run_tool(root, "git", "add", "-A"))
    ok(run_tool(root, "git", "commit", "-qm", "smoke-sized params", "--allow-empty"))
    return root


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory) -> Path:
    """The one real pipeline run the integration tests share: the smoke preset on the real SmolLM2,
    run by Snakemake in a fresh clone (`smoke_clone`). No `--config preset=smoke`: params.yaml holds
    the preset's values, so the commands are exactly the ones dvc.yaml runs and DVC can adopt them."""
    root = smoke_clone(tmp_path_factory.mktemp("smoke") / "clone")
    ok(run_tool(root, "snakemake", "--cores", "2", "--", SMOKE_REPORT))
    return root


def train_tiny_cell(root: Path, model: Path, params_file: Path, name: str, seed: int = 0, lr: float = 0.001) -> Path:
    """root/res/{name}: a cell trained by the real stages (prepare-data once, init-adapter, train)."""
    from locus.cli import main

    data, cell = root / "res" / "data" / "arith", root / "res" / name
    if not data.exists():
        assert main(argv("prepare-data", params=params_file, domain="arith", out=data)) == 0
    assert main(argv("init-adapter", params=params_file, model=model, seed=seed, out=cell / "adapter_init")) == 0
    init = cell / "adapter_init"
    assert main(argv("train", params=params_file, model=model, data=data, init=init, lr=lr, seed=seed, out=cell)) == 0
    return cell
