"""Faults injected into `locus train` on the tiny random Llama (NF4, as the default grid trains).

SIGKILL after a checkpoint appears and during a checkpoint save, a NaN loss, and a full disk while
saving: every interrupted run must leave no output that looks complete, keep its last complete
checkpoint, and a rerun must resume to exactly the uninterrupted run's adapter, log and metrics.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from conftest import argv, start_until, write_params, write_raw
from locus import layout
from locus.cli import main
from locus.params import load
from locus.training import checkpoints

pytestmark = pytest.mark.cpu_only("kill-and-resume is bit-identical on the CPU; CUDA only with training.deterministic")

EVERY = 4  # checkpoint every 4 optimizer steps
# 8 epochs of 13 steps: a few seconds on the tiny model, so a test polling for a checkpoint to kill
# at cannot miss every one of them while the machine is busy with other tests.
EPOCHS, STEPS = 8, 8 * 13
OUTPUTS = ("adapter_final", "train_log.csv", "metrics.json")

# Test-only driver: `locus` in a subprocess that SIGKILLs itself at a chosen point of the save at
# step N — "optimizer": checkpoint-N's adapter is written, its optimizer state not yet;
# "rename": its marker is written and synced, the directory not yet renamed into place.
KILL_DRIVER = textwrap.dedent("""
    import os, signal, sys
    from pathlib import Path
    from transformers import Trainer
    from locus.training import checkpoints
    from locus.cli import main
    where, step = sys.argv[1], int(sys.argv[2])
    die = lambda: os.kill(os.getpid(), signal.SIGKILL)
    if where == "optimizer":
        save = Trainer._save_optimizer_and_scheduler
        def patched(self, output_dir):
            if self.state.global_step == step:
                die()
            save(self, output_dir)
        Trainer._save_optimizer_and_scheduler = patched
    else:
        fsync = checkpoints._fsync
        def patched(path):
            fsync(path)
            if Path(path).name == checkpoints.MARKER and Path(path).parent.name == f"checkpoint-{step}":
                die()
        checkpoints._fsync = patched
    sys.exit(main(sys.argv[3:]))
""")


class Setup:
    def __init__(self, root: Path, model: Path, raw: Path):
        self.root, self.model = root, model
        training = {"grad_accum_steps": 1, "epochs": EPOCHS, "checkpoint_every": EVERY}
        self.params = write_params(root / "p.yaml", raw, root / "res", training=training)
        self.data, self.init = root / "data", root / "adapter_init"
        common = ["--params", str(self.params)]
        assert main(argv("prepare-data", *common, domain="arith", out=self.data)) == 0
        assert main(argv("init-adapter", *common, model=model, seed="0", out=self.init)) == 0
        # The reference trains without checkpoints: saving must not perturb the trajectory either.
        ref_params = write_params(root / "ref.yaml", raw, root / "res", training={**training, "checkpoint_every": 0})
        self.ref = self.cell("ref")
        assert subprocess.run(self.cmd(self.ref, ref_params), capture_output=True).returncode == 0

    def cell(self, name: str) -> Path:
        cell = self.root / name
        shutil.copytree(self.init, cell / "adapter_init")
        return cell

    def args(self, cell: Path, params: Path | None = None) -> list[str]:
        return argv(
            "train",
            params=params or self.params,
            model=self.model,
            data=self.data,
            init=cell / "adapter_init",
            lr="0.001",
            seed="0",
            out=cell,
        )

    def cmd(self, cell: Path, params: Path | None = None) -> list[str]:
        return [sys.executable, "-m", "locus", *self.args(cell, params)]

    def assert_equals_reference(self, cell: Path, resumed_from: int) -> None:
        final, ref = (load_file(c / "adapter_final" / "adapter_model.safetensors") for c in (cell, self.ref))
        assert final.keys() == ref.keys()
        for key in ref:
            assert torch.equal(final[key], ref[key]), key
        assert (cell / "train_log.csv").read_text() == (self.ref / "train_log.csv").read_text()
        got, want = (json.loads((c / "metrics.json").read_text()) for c in (cell, self.ref))
        for key in ("eval_loss_before", "eval_loss_after", "train_loss", "final_step_loss", "optimizer_steps"):
            assert got[key] == want[key], key
        assert got["resumed_from_step"] == resumed_from and want["resumed_from_step"] == 0
        assert not checkpoints.checkpoint_dir(cell).exists(), "checkpoints must go once the outputs are in place"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_model):
    root = tmp_path_factory.mktemp("resume")
    return Setup(root, tiny_model, write_raw(root / "raw"))


def complete_steps(cell: Path) -> list[int]:
    return sorted(
        int(p.parent.name.split("-")[1])
        for p in checkpoints.checkpoint_dir(cell).glob("checkpoint-*/" + checkpoints.MARKER)
    )


def assert_no_outputs(cell: Path) -> None:
    assert not [name for name in OUTPUTS if (cell / name).exists()], "an interrupted run left an output"


def start_until_a_checkpoint(cmd: list[str], **popen) -> tuple[subprocess.Popen, int]:
    """Start `cmd` and return (process, step) as soon as its output says a checkpoint is complete
    (the train stage's announcement, relayed by Snakemake or DVC)."""
    proc, found = start_until(cmd, re.escape(checkpoints.ANNOUNCE) + r"(\d+)", **popen)
    return proc, int(found[1])


def kill_after_a_checkpoint(cmd: list[str], cell: Path, **popen) -> int:
    """SIGKILL `cmd`'s whole process group (a workflow tool and its `locus train`) right after its
    first complete checkpoint, check nothing was output, and return the newest complete step."""
    proc, announced = start_until_a_checkpoint(cmd, **popen)
    os.killpg(proc.pid, signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    assert_no_outputs(cell)
    steps = complete_steps(cell)
    assert len(steps) == 1 and announced <= steps[0] < STEPS and steps[0] % EVERY == 0
    return steps[0]


def test_sigkill_after_a_checkpoint_resumes_bit_identically(setup):
    cell = setup.cell("killed")
    killed_at = kill_after_a_checkpoint(setup.cmd(cell), cell)
    assert main(setup.args(cell)) == 0
    setup.assert_equals_reference(cell, resumed_from=killed_at)


@pytest.mark.parametrize("where, step", [("optimizer", 16), ("rename", 8)])
def test_sigkill_during_a_checkpoint_save_resumes_from_the_previous_one(setup, where, step):
    cell = setup.cell(f"killed_{where}")
    proc = subprocess.run([sys.executable, "-c", KILL_DRIVER, where, str(step), *setup.args(cell)], capture_output=True)
    assert proc.returncode == -signal.SIGKILL
    assert_no_outputs(cell)
    assert complete_steps(cell) == [step - EVERY]
    assert (checkpoints.staging_dir(cell) / f"checkpoint-{step}").is_dir(), "the kill was not during the save"
    assert main(setup.args(cell)) == 0
    setup.assert_equals_reference(cell, resumed_from=step - EVERY)


def test_nan_loss_stops_with_the_step_and_keeps_the_last_good_checkpoint(setup, monkeypatch, capsys):
    """From the 6th training forward on the loss is NaN (a forward hook on the real model's decoder:
    its hidden states become NaN, and so does every loss computed from them)."""
    from locus.stages import train as train_stage

    build = train_stage.build_model
    forwards = []

    def poison(module, inputs, output):
        if module.training:
            forwards.append(1)
            if len(forwards) >= 6:
                output["last_hidden_state"] = output["last_hidden_state"] * float("nan")
        return output

    def build_poisoned(*args, **kwargs):
        model = build(*args, **kwargs)
        model.get_base_model().get_decoder().register_forward_hook(poison)
        return model

    monkeypatch.setattr(train_stage, "build_model", build_poisoned)
    cell = setup.cell("nan")
    assert main(setup.args(cell)) == 1
    # One error line (a progress bar may precede it on the same terminal line).
    [err] = re.findall(r"locus train: [^\r\n]*", capsys.readouterr().err)
    assert (
        "loss is nan at step 6" in err
        and f"last good checkpoint: {checkpoints.checkpoint_dir(cell)}/checkpoint-{EVERY}" in err
    )
    assert_no_outputs(cell)
    assert complete_steps(cell) == [EVERY]
    kept = load_file(checkpoints.checkpoint_dir(cell) / f"checkpoint-{EVERY}" / "adapter_model.safetensors")
    assert all(torch.isfinite(t).all() for t in kept.values())


def test_disk_full_while_saving_keeps_the_previous_checkpoint(setup, monkeypatch, capsys):
    """ENOSPC from the first file of checkpoint-8's save (torch.save, as the Trainer calls it)."""
    real_save = torch.save

    def full_disk(obj, f, *args, **kwargs):
        if f"checkpoint-{2 * EVERY}" in str(f):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(f))
        return real_save(obj, f, *args, **kwargs)

    monkeypatch.setattr(torch, "save", full_disk)
    cell = setup.cell("full")
    assert main(setup.args(cell)) == 1
    assert "No space left on device" in capsys.readouterr().err
    assert_no_outputs(cell)
    assert complete_steps(cell) == [EVERY]
    monkeypatch.setattr(torch, "save", real_save)  # space freed: the rerun resumes from step 4
    assert main(setup.args(cell)) == 0
    setup.assert_equals_reference(cell, resumed_from=EVERY)


def fake_checkpoint(cell: Path, step: int, fp: str) -> Path:
    """A staged checkpoint promoted by the real callback (files stand in for the Trainer's)."""
    staged = checkpoints.staging_dir(cell) / f"checkpoint-{step}"
    staged.mkdir(parents=True)
    (staged / "optimizer.pt").write_bytes(os.urandom(256))
    (staged / "trainer_state.json").write_text("{}")

    class State:
        global_step = step

    checkpoints.AtomicCheckpoints(cell, fp).on_save(None, State, None)
    return checkpoints.checkpoint_dir(cell) / f"checkpoint-{step}"


def test_only_a_complete_checkpoint_of_the_same_inputs_is_resumed(tmp_path):
    first = fake_checkpoint(tmp_path, 4, "fp")
    second = fake_checkpoint(tmp_path, 8, "fp")
    assert not first.exists() and checkpoints.resume_point(tmp_path, "fp") == second  # older pruned
    (checkpoints.staging_dir(tmp_path) / "checkpoint-12").mkdir(parents=True)  # a killed save
    assert checkpoints.resume_point(tmp_path, "fp") == second
    assert not checkpoints.staging_dir(tmp_path).exists()
    with open(second / "optimizer.pt", "r+b") as f:  # one flipped byte: corrupt, never resumed
        byte = f.read(1)
        f.seek(0)
        f.write(bytes([byte[0] ^ 1]))
    assert checkpoints.resume_point(tmp_path, "fp") is None and not second.exists()
    fake_checkpoint(tmp_path, 8, "fp")
    assert checkpoints.resume_point(tmp_path, "other params or data") is None  # stale: discarded
    assert not list(checkpoints.checkpoint_dir(tmp_path).iterdir())


def test_checkpoint_every_is_validated(tmp_path, arith_raw, capsys):
    for bad in (-1, 2.5):
        params = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", training={"checkpoint_every": bad})
        assert main(argv("prepare-data", params=params, domain="arith", out=tmp_path / "d")) == 2
        assert "training.checkpoint_every" in capsys.readouterr().err


def tiny_workdir(tmp_path: Path, tiny_model: Path, params_name: str, epochs: int = EPOCHS) -> tuple[Path, Path, dict]:
    """A copy of the pipeline with the tiny model as models_dir/base and a tiny arith dataset
    (13 optimizer steps per epoch)."""
    from conftest import copy_repo

    work = copy_repo(tmp_path / "work")
    write_raw(work / "tiny_raw")
    shutil.copytree(tiny_model, work / "tiny_models" / "base")
    for path in (work / "tiny_models").rglob("*"):  # newer than the code, so prepare_model is up to date
        os.utime(path)
    # The repository's params.yaml (dvc.yaml interpolates its keys) with a tiny grid over it.
    params = yaml.safe_load((work / "params.yaml").read_text())
    params.update(
        results_dir="results",
        models_dir="tiny_models",
        lr=0.001,
        grid={"domains": ["arith"], "learning_rates": [0.001], "seeds": [0]},
    )
    params["data"].update(raw_dir="tiny_raw", eval_fraction=0.2, max_train_examples=None, max_eval_examples=None)
    params["lora"].update(r=4, alpha=8)
    params["training"].update(grad_accum_steps=1, epochs=epochs, checkpoint_every=EVERY, max_seq_length=64)
    (work / params_name).write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return work, work / "results" / "runs" / "arith" / "lora" / "lr=0.001" / "seed=0", env


def assert_resumed(cell: Path, killed_at: int) -> None:
    metrics = json.loads((cell / "metrics.json").read_text())
    assert metrics["resumed_from_step"] == killed_at and metrics["optimizer_steps"] == STEPS
    assert not checkpoints.checkpoint_dir(cell).exists()


def test_snakemake_rerun_incomplete_resumes_a_killed_train_job(tmp_path, tiny_model):
    """Snakemake and its train job SIGKILLed mid-training, then `--unlock` and `--rerun-incomplete`."""
    from conftest import run_tool

    work, cell, env = tiny_workdir(tmp_path, tiny_model, "tiny.yaml")
    target = ["--config", "params=tiny.yaml", "--", str(cell.relative_to(work) / "metrics.json")]
    killed_at = kill_after_a_checkpoint(["snakemake", "--cores", "1", *target], cell, cwd=work, env=env)
    assert run_tool(work, "snakemake", "--unlock", *target).returncode == 0
    rerun = run_tool(work, "snakemake", "--cores", "1", "--rerun-incomplete", *target)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert_resumed(cell, killed_at)


def test_dvc_repro_resumes_a_killed_train_stage(tmp_path, tiny_model):
    """`dvc repro` of the cell's train stage SIGKILLed mid-training, then `dvc repro` again."""
    from conftest import run_tool

    work, cell, env = tiny_workdir(tmp_path, tiny_model, "params.yaml")  # dvc.yaml reads params.yaml
    with contextlib.chdir(work):  # where dvc.yaml's train stage reads its inputs
        params = load("params.yaml")
        init_dir, w0 = layout.init_dir(params, 0), layout.pattern("w0_file", params)
        before = str(layout.eval_base_path(params, "arith"))  # the base model's eval loss, read by train
    for cmd in (
        ["dvc", "init", "--no-scm", "-q"],
        ["locus", "prepare-data", "--domain", "arith", "--out", "results/data/arith"],
        ["locus", "init-adapter", "--model", "tiny_models/base", "--seed", "0", "--out", str(init_dir)],
        ["locus", "quantize-base", "--model", "tiny_models/base", "--out", w0],
        ["locus", "evaluate", "--model", "tiny_models/base", "--w0", w0, "--domains", "arith", "--out", before],
    ):
        assert run_tool(work, *cmd).returncode == 0, cmd
    [stage] = [
        s
        for s in run_tool(work, "dvc", "stage", "list", "--name-only").stdout.split()
        if s.startswith("train@") and "arith" in s
    ]
    killed_at = kill_after_a_checkpoint(["dvc", "repro", "--single-item", stage], cell, cwd=work, env=env)
    rerun = run_tool(work, "dvc", "repro", "--single-item", stage)
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    assert_resumed(cell, killed_at)


def terminal_sigint() -> None:
    """In the child before exec: SIGINT as a shell on a terminal leaves it (default action, not
    blocked). A test worker's process may have it ignored or blocked, and children inherit both;
    seen in the two-worker suite, where Snakemake and its job then trained on through Ctrl-C."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_stops_snakemake_cleanly_and_the_same_command_continues(tmp_path, tiny_model):
    """SIGINT to the foreground process group (what Ctrl-C sends) mid-training: Snakemake and its
    train job stop, no output or staging file is left at an output path, the checkpoint survives,
    and the same command (as `make report` runs it: no --rerun-incomplete) resumes from it."""
    epochs = 40  # ≈ 20 s of training: Ctrl-C lands mid-training even on a machine busy with other tests
    work, cell, env = tiny_workdir(tmp_path, tiny_model, "tiny.yaml", epochs)
    command = ["snakemake", "--cores", "1", "--config", "params=tiny.yaml", "--"]
    command.append(str(cell.relative_to(work) / "metrics.json"))
    proc, seen = start_until_a_checkpoint(command, cwd=work, env=env, preexec_fn=terminal_sigint)
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=300)  # a hang guard, not a measurement
    assert proc.returncode != 0, (
        f"not interrupted: exit 0 after SIGINT at checkpoint {seen}; "
        f"this process's SIGINT handler: {signal.getsignal(signal.SIGINT)}"
    )
    assert_no_outputs(cell)
    leftovers = [p.name for p in cell.iterdir() if p.name.startswith(".")]
    assert not leftovers, leftovers  # io.atomic_path's staging directories are removed on the way out
    interrupted_at = complete_steps(cell)[-1]
    rerun = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=900)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    metrics = json.loads((cell / "metrics.json").read_text())
    assert metrics["resumed_from_step"] >= interrupted_at and metrics["optimizer_steps"] == 13 * epochs
