"""The GPU suite runs end to end on CPU with a tiny shape, so a lent GPU only has to run it."""

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_suite_runs_end_to_end_with_a_tiny_shape(tmp_path):
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
        ],
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"},
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    report = json.loads(next(tmp_path.glob("gpu-*-tiny.json")).read_text())
    env, metrics = report["environment"], report["pipeline"]["metrics"]
    assert env["torch"] and env["nf4_matmul_ok"] is True
    assert metrics["optimizer_steps"] == 3 and metrics["quantization"] == "nf4"
    assert metrics["device"] == ("cuda" if env["cuda"] else "cpu")
    assert set(report["throughput"]["results"]) == {"naive", "locus"}
    checks = {c["check"]: c for c in report["checks"]}
    assert len(checks) == 6 and all(c["ok"] is not False for c in checks.values()), checks
    # On a CPU every check but the device-vs-CPU NF4 comparison has an answer.
    answered = {name for name, c in checks.items() if c["ok"] is not None}
    assert env["cuda"] or answered == set(checks) - {"NF4 round trip, training device vs CPU"}, checks
    assert "bit-identical adapter" in checks["kill and resume"]["detail"]
    table = next(tmp_path.glob("gpu-*-tiny.md")).read_text()
    assert "pipeline cell, stage by stage" in table and "| naive |" in table and "| locus |" in table
