"""Job logs (stderr not a terminal) carry no third-party noise and no progress-bar redraws."""

import os
import subprocess
import sys
from pathlib import Path

from conftest import argv, write_params


def locus(*args, cwd):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    return subprocess.run(["locus", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_a_training_job_log_is_one_line_per_step_without_noise(tmp_path, tiny_model, arith_raw):
    params = str(write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res", training={"checkpoint_every": 0}))
    data, cell = tmp_path / "data", tmp_path / "cell"
    for args in (
        argv("prepare-data", domain="arith", out=data),
        argv("init-adapter", model=tiny_model, seed="0", out=cell / "adapter_init"),
    ):
        assert locus(*args, "--params", params, cwd=tmp_path).returncode == 0
    run = locus(
        "train",
        "--params",
        params,
        "--model",
        str(tiny_model),
        "--data",
        str(data),
        "--init",
        str(cell / "adapter_init"),
        "--lr",
        "0.001",
        "--seed",
        "0",
        "--out",
        str(cell),
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    log = run.stdout + run.stderr
    assert "kernels-community" not in log and "FutureWarning" not in log and "\r" not in log
    steps = [line for line in run.stderr.splitlines() if line.startswith("step ")]
    assert steps and all("loss" in s and "tokens/s" in s and "ETA" in s for s in steps)
    assert steps[-1].startswith(f"step {len(steps)}/{len(steps)} ")


def test_library_progress_bars_are_off_in_job_logs():
    """A plain tqdm bar (transformers' GGUF conversion in prepare-model draws one) leaves no redraws in a log."""
    probe = (
        "from locus import logs; logs.quiet_third_party(); from tqdm.auto import tqdm; "
        "[i for i in tqdm(range(50), desc='Converting')]"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert "Converting" not in run.stderr and "\r" not in run.stderr
