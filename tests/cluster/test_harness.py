"""The cluster harness's waits (no SLURM needed): a log line and a process's end are events."""

from __future__ import annotations

import os
import subprocess

import pytest

from cluster import slurm_cluster


def test_wait_for_line_reads_what_is_there_and_what_comes(tmp_path):
    log = tmp_path / "daemon.out"
    log.write_text("munged: Info: Created socket\n")
    writer = subprocess.Popen(["sh", "-c", f'echo "munged: Info: Created 2 work threads" >> "{log}"'])
    slurm_cluster.wait_for_line("munged", log, r"Created \d+ work thread", timeout=60)
    writer.wait()


def test_wait_for_line_fails_at_once_when_a_daemon_exits(tmp_path):
    log = tmp_path / "daemon.out"
    log.write_text("starting\n")
    daemon = subprocess.Popen(["sh", "-c", "exit 1"])
    with pytest.raises(RuntimeError, match="a daemon exited while waiting for slurmctld"):
        slurm_cluster.wait_for_line("slurmctld", log, r"Running as primary controller", timeout=600, pids=[daemon.pid])
    daemon.wait()


def test_wait_for_line_is_bounded(tmp_path):
    log = tmp_path / "daemon.out"
    log.write_text("nothing useful\n")
    with pytest.raises(TimeoutError, match="daemon.out"):
        slurm_cluster.wait_for_line("slurmd", log, r"never printed", timeout=0.5)


def test_wait_gone_follows_the_process_not_the_clock():
    quick, slow = subprocess.Popen(["true"]), subprocess.Popen(["sleep", "600"])
    fds = slurm_cluster.open_processes([quick.pid, slow.pid])
    try:
        assert slurm_cluster.wait_gone(fds[:1], timeout=60)
        assert not slurm_cluster.wait_gone(fds[1:], timeout=0.2)
        slow.kill()
        assert slurm_cluster.wait_gone(fds[1:], timeout=60)
    finally:
        for fd in fds:
            os.close(fd)
        quick.wait()
        slow.wait()
