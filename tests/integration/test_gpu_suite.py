"""The GPU suite runs end to end on CPU with a tiny shape, so a lent GPU only has to run it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def carried_wheels(tmp_path_factory):
    """benchmarks/gpu-wheels.txt's exact pins, downloaded as gpu_wheels.sh does but for this Python
    (the GPU image's 3.12 builds do not import on 3.11): the suite's install path, exercised."""
    wheels = tmp_path_factory.mktemp("gpu-wheels")
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
         "--only-binary=:all:", "-r", str(REPO / "benchmarks/gpu-wheels.txt"), "-d", str(wheels)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if download.returncode:
        pytest.skip(
            f"the package index is unreachable, so the carried wheels cannot be fetched: {download.stderr[-300:]}"
        )
    return wheels


def test_gpu_suite_runs_end_to_end_with_a_tiny_shape(tmp_path, carried_wheels):
    """The whole suite through gpu_suite.sh's offline install: the carried wheels go into a target
    folder first on the path, so every stage runs on them, not on the venv's own copies."""
    packages = tmp_path / "gpu-packages"
    run = subprocess.run(
        [
            str(REPO / "benchmarks/gpu_suite.sh"),
            "--shape",
            "tiny",
            "--steps",
            "3",
            "--throughput-steps",
            "2",
            "--out",
            str(tmp_path),
            "--budget-s",
            "1200",  # every check answered even on a slow CI machine; the skip itself is a unit test
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
            "GPU_WHEELS": str(carried_wheels),
            "GPU_PACKAGES": str(packages),
            "GPU_SUITE_INSTALL": "1",
        },
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    report = json.loads(next(tmp_path.glob("gpu-*-tiny.json")).read_text())
    env, metrics = report["environment"], report["pipeline"]["metrics"]
    assert set(env["imported_from"].values()) == {str(packages)}, env["imported_from"]
    assert env["torch"] and env["nf4_matmul_ok"] is True
    assert metrics["optimizer_steps"] == 3 and metrics["quantization"] == "nf4"
    assert metrics["device"] == ("cuda" if env["cuda"] else "cpu")
    assert set(report["throughput"]["results"]) == {"naive", "locus"}
    checks = {c["check"]: c for c in report["checks"]}
    assert len(checks) == 6 and all(c["ok"] is not False for c in checks.values()), checks
    assert all(c["ok"] is True for c in checks.values()), checks  # every check has an answer on a CPU too
    assert "bit-identical adapter" in checks["kill and resume"]["detail"]
    table = next(tmp_path.glob("gpu-*-tiny.md")).read_text()
    assert "pipeline cell, stage by stage" in table and "| naive |" in table and "| locus |" in table
    # the full-FT arm ran last, after the throughput rows (its stages in the progress file's order)
    stages = [json.loads(line) for line in next(tmp_path.glob("progress-tiny.jsonl")).read_text().splitlines()]
    order = [e.get("stage") or ("throughput" if "throughput" in e else None) for e in stages]
    assert order.index("train_full") > order.index("train") and "full-FT arm and aggregate" in table


def test_past_its_time_budget_the_suite_skips_what_is_left_and_says_so(tmp_path, arith_raw):
    """A run that must end at a fixed time keeps what it has: checks not yet started are skipped,
    each with the reason (no answer, not a failure), and each skip is written as it happens."""
    import gpu_suite
    from conftest import write_params

    params_file = write_params(tmp_path / "p.yaml", arith_raw, tmp_path / "res")
    cell = {
        "params_file": str(params_file),
        "cell": "c",
        "init": "i",
        "model": "m",
        "data": "d",
        "w0": "w",
        "full_ft": "f",
    }
    written = []
    results = gpu_suite.checks(cell, 3, tmp_path, lambda entry: written.append(entry) or entry, deadline=0.0)
    results += gpu_suite.checks(cell, 3, tmp_path, lambda e: written.append(e) or e, deadline=0.0, full_ft=True)
    assert len(results) == 6 and all(r["ok"] is None and r["detail"] == gpu_suite.SPENT for r in results)
    assert [w["check"] for w in written] == results
