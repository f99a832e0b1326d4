"""The pipeline through a real SLURM cluster: `snakemake --profile workflow/profiles/slurm`.

A single-node cluster (slurmctld + slurmd + munged on localhost, see slurm_cluster.py) is brought
up for this module and torn down in `finally`, also when a test fails. The workflow runs in a temp
copy of the repository on a reduced grid (tests/cluster/cluster-test.yaml: 2 domains x 1 LR, the
smoke budget) with the tests' tiny random Llama as `model.source`: SLURM's submission, resources,
failures and restarts are under test here, and the real model's jobs would only add minutes.
Every wait is bounded: each snakemake run is killed (its whole process group) at its timeout.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from cluster import slurm_cluster  # tests/cluster is a package: its conftest is cluster.conftest
from conftest import copy_repo, start_until

pytestmark = [pytest.mark.cluster, pytest.mark.integration]

HERE = Path(__file__).resolve().parent
PRESET = "cluster-test"
RESULTS = "results/cluster"
TARGET = f"{RESULTS}/report.html"
DOMAINS = ["cpp", "python"]
LR, SEED = "0.001", 0
RUN_TIMEOUT = 900  # s, per snakemake run: a hang guard, never a speed target


def env() -> dict:
    return {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def snakemake_cmd(*args: str) -> list[str]:
    return [
        "snakemake",
        "--profile",
        "workflow/profiles/slurm",
        "--config",
        f"preset={PRESET}",
        # test speed only: the plugin polls squeue this many seconds after a submission or a finish,
        # then 10 s longer each time nothing has finished. This run's jobs take 12–26 s from
        # submission: 2 s polls at 2, 14, 36 s; 5 s at 5, 20, 45 s; the profile's 20 s at 20, 50, 90 s
        "--slurm-init-seconds-before-status-checks",
        "2",
        *args,
    ]


def start(work: Path, cmd: list[str], log: Path) -> subprocess.Popen:
    out = open(log, "w")
    return subprocess.Popen(
        cmd, cwd=work, env=env(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
    )


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the group of the process we started, nothing else
    except ProcessLookupError:
        pass
    proc.wait(timeout=30)


def run(work: Path, *args: str, timeout: int = RUN_TIMEOUT, name: str = "run") -> tuple[int, str]:
    """Run snakemake with the SLURM profile; kill its process group at the timeout."""
    log = work / f"snakemake-{name}.log"
    proc = start(work, snakemake_cmd(*args), log)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc)
        slurm_cluster.cancel_all_jobs()
        pytest.fail(f"snakemake {name} did not finish in {timeout} s; tail of {log}:\n" + log.read_text()[-4000:])
    return rc, log.read_text()


def slurm_jobs() -> list[dict]:
    """Every job slurmctld still knows (finished ones stay for MinJobAge = 300 s)."""
    out = subprocess.run(
        ["squeue", "-h", "-t", "all", "-o", "%i|%T|%k|%P|%m|%l|%C"],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    keys = ["id", "state", "comment", "partition", "mem", "time", "cpus"]
    return [dict(zip(keys, line.split("|"))) for line in out.splitlines() if line.strip()]


def job_processes(job_id: str) -> list[int]:
    """The PIDs of one running SLURM job."""
    pids = slurm_cluster.job_pids(job_id)
    assert pids, f"scontrol listpids {job_id} found no processes"
    return pids


def kill_processes(fds: list[int]) -> None:
    """SIGKILL every process of a job, so that nothing in it can clean up: `scancel --signal=KILL`
    reaches the steps one by one and the job's own snakemake would remove its outputs and
    incomplete markers in between."""
    for sig in (signal.SIGSTOP, signal.SIGKILL):  # freeze all first: none sees another one die
        for fd in fds:
            try:
                signal.pidfd_send_signal(fd, sig)
            except ProcessLookupError:
                pass


def train_comment(domain: str) -> str:
    # The plugin's --comment: rule_<rule>_wildcards_<wildcard values joined by "_">
    return f"rule_train_wildcards_{domain}_lora_{LR}_{SEED}"


@pytest.fixture(scope="module")
def cluster():
    reason = slurm_cluster.unavailable_reason()
    if reason:
        pytest.skip(f"no SLURM test cluster: {reason}")
    try:
        slurm_cluster.up()
        yield
    finally:
        slurm_cluster.down()


@pytest.fixture(scope="module")
def pipeline(cluster, tmp_path_factory, tiny_real_data_model):
    work = copy_repo(tmp_path_factory.mktemp("slurm"))
    preset = yaml.safe_load((HERE / f"{PRESET}.yaml").read_text())
    preset["model"] = {"source": str(tiny_real_data_model)}  # the wiring is under test, not the model
    (work / "presets" / f"{PRESET}.yaml").write_text(yaml.safe_dump(preset))
    started = time.monotonic()
    rc, out = run(work, "--", TARGET, name="first")
    assert rc == 0, out[-6000:]
    print(f"SLURM pipeline run: {time.monotonic() - started:.0f} s")
    return work, out


def test_pipeline_runs_through_sbatch(pipeline):
    work, out = pipeline
    assert (work / TARGET).is_file()
    jobs = slurm_jobs()
    by_comment = {j["comment"]: j for j in jobs}
    # Every cell trained in its own SLURM job, with the resources of params' cluster: section.
    for domain in DOMAINS:
        job = by_comment.get(train_comment(domain))
        assert job, f"no SLURM job for train {domain}: {jobs}"
        assert job["state"] == "COMPLETED" and job["partition"] == "debug"
        assert (job["mem"], job["time"], job["cpus"]) == ("3000M", "20:00", "1")
        metrics = json.loads(
            (work / RESULTS / "runs" / domain / "lora" / f"lr={LR}" / f"seed={SEED}" / "metrics.json").read_text()
        )
        assert metrics["optimizer_steps"] >= 2
    assert by_comment["rule_prepare_model"]["mem"] == "2000M"
    # The plugin's per-job logs are named by SLURM job id.
    logs = list((work / ".snakemake/slurm_logs/rule_train").rglob("*.log"))
    ids = {j["id"] for j in jobs if j["comment"].startswith("rule_train_")}
    assert {p.stem for p in logs} >= ids and len(ids) == len(DOMAINS)
    # delta, aggregate and report are localrules: never submitted.
    submitted = {j["comment"].split("_wildcards_")[0] for j in jobs}
    assert not submitted & {"rule_delta", "rule_aggregate", "rule_report"}, submitted
    assert {"rule_prepare_model", "rule_prepare_data", "rule_init_adapter", "rule_train"} <= submitted
    assert "Nothing to be done" in run(work, "-n", "--", TARGET, timeout=120, name="dry")[1]
    # docs/gpu-and-cluster.md's "rerun one cell": --forcerun on a cell's metrics redoes that cell and what follows.
    cell = f"{RESULTS}/runs/cpp/lora/lr={LR}/seed={SEED}/metrics.json"
    plan = run(work, "-n", "--forcerun", cell, "--", TARGET, timeout=120, name="forcerun")[1]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", plan, flags=re.M))
    expected = {"train": "1", "delta": "1", "effective": "1", "represent": "1", "aggregate": "1", "report": "1"}
    assert counts == expected | {"total": "6"}, plan[-3000:]


def test_a_failed_cell_fails_the_run_and_names_it(pipeline):
    work, _ = pipeline
    raw = work / "data/raw/python.jsonl"
    good = raw.read_bytes()
    try:
        raw.write_text('{"instruction": "fine", "response": "fine"}\nthis is not JSON\n')
        rc, out = run(work, "--retries", "0", "--", TARGET, name="failing")
        assert rc != 0
        # The main process's error block names the cell through its outputs and both logs ...
        block = re.search(r"Error in rule prepare_data:\n(.*?)external_jobid", out, re.S)
        assert block, out[-4000:]
        assert f"{RESULTS}/data/python/train.jsonl" in block[1]
        assert f"{RESULTS}/logs/prepare_data/python.log" in block[1]
        assert ".snakemake/slurm_logs/rule_prepare_data/python/" in block[1]
        assert "cpp" not in "".join(re.findall(r"Error in rule.*?external_jobid", out, re.S))
        # ... and show-failed-logs prints the stage's own message, naming file and line.
        assert "data/raw/python.jsonl:2: malformed JSON" in out, out[-4000:]
    finally:
        raw.write_bytes(good)


def test_rerun_incomplete_resumes_after_a_hard_kill(pipeline):
    """Snakemake and a running train job die hard (SIGKILL: a lost login session, a dead node).

    The train job cannot clean up, so its outputs stay marked incomplete; the next run (after
    --unlock) redoes that cell because the profile sets rerun-incomplete, and finishes the report.
    """
    work, _ = pipeline
    (work / "data/raw/python.jsonl").touch()  # python's data, training and analysis are now stale
    before = {j["id"] for j in slurm_jobs()}
    # Event-driven, no polling: the submission line names the train job's SLURM log; SLURM creates
    # that file when the job starts, and its first line says the job is running.
    proc, submitted = start_until(
        snakemake_cmd("--", TARGET),
        rf"SLURM jobid (\d+) \(log: (\S*rule_train/python_lora_{LR}_{SEED}/\d+\.log)\)",
        cwd=work,
        env=env(),
        stdin=subprocess.DEVNULL,
    )
    killed, job_log = submitted.group(1), work / submitted.group(2)
    tail, fds = None, []
    try:
        try:
            tail, _ = start_until(["sh", "-c", 'exec tail -F -n +1 "$0" 2>/dev/null', str(job_log)], r"\S")
            fds = slurm_cluster.open_processes(job_processes(killed))
        finally:
            if tail:
                kill_group(tail)
            kill_group(proc)  # snakemake itself: no cleanup, its lock stays
        # The job: every process of it SIGKILLed at once, as if its node died; then wait for them to go.
        kill_processes(fds)
        assert slurm_cluster.wait_gone(fds, timeout=60), f"SLURM job {killed} survived SIGKILL"
    finally:
        for fd in fds:
            os.close(fd)
        slurm_cluster.cancel_all_jobs()
    incomplete = work / ".snakemake/incomplete"
    assert incomplete.is_dir() and any(incomplete.iterdir()), "no incomplete marker left behind"
    rc, out = run(work, "--", TARGET, timeout=300, name="locked")  # the killed run's lock
    assert rc != 0 and "cannot be locked" in out, out[-3000:]

    assert run(work, "--unlock", timeout=120, name="unlock")[0] == 0
    rc, out = run(work, "--", TARGET, name="resume")
    assert rc == 0, out[-6000:]
    # rerun-incomplete forces the interrupted job (Snakemake reports it as forced) ...
    assert re.search(rf"Training python \(lora\), lr={LR}, seed={SEED}\nReason: Forced execution", out), out[-6000:]
    assert not any(incomplete.iterdir())  # ... and clears its markers
    trains = sorted(
        (int(j["id"]), j["state"])
        for j in slurm_jobs()
        if j["comment"] == train_comment("python") and j["id"] not in before
    )
    assert len(trains) == 2 and trains[0][0] == int(killed) and trains[0][1] != "COMPLETED", trains
    assert trains[1][1] == "COMPLETED", trains
    assert not any(j["comment"] == train_comment("cpp") and j["id"] not in before for j in slurm_jobs())
    assert (work / TARGET).stat().st_mtime > (work / "data/raw/python.jsonl").stat().st_mtime
