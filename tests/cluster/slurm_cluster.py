"""A throw-away single-node SLURM cluster on localhost, for the cluster tests (root only).

    python tests/cluster/slurm_cluster.py up     # install if missing, configure, start, wait idle
    python tests/cluster/slurm_cluster.py down   # stop what `up` started (by recorded PID)
    python tests/cluster/slurm_cluster.py status

`up` installs Debian's slurmctld, slurmd, slurm-client and munge (--no-install-recommends) if they
are missing, writes /etc/slurm/slurm.conf for one node (this machine's CPUs and memory, as
`slurmd -C` reports them; no accounting, no cgroups), starts munged (as the munge user), slurmctld
and slurmd in the foreground as background processes, records their PIDs under STATE, and waits
(bounded) until the cluster has run one job. Every wait is an event, never a poll: a daemon's log
line read as `tail -F` delivers it (inotify), a process's end through its pidfd, a job's end through
`srun` returning. Nothing is started through systemd and nothing is stopped by name. The SLURM executor plugin drops SLURM_CONF inside jobs, so the config has to be
at /etc/slurm/slurm.conf; an existing one that this script did not write is never touched.
"""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

PACKAGES = ["slurmctld", "slurmd", "slurm-client", "munge"]
BINARIES = ["slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel", "munged"]
CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# Written by Locus tests/cluster/slurm_cluster.py: a single-node test cluster."
STATE = Path(os.environ.get("LOCUS_SLURM_STATE", "/var/lib/locus-slurm"))
MUNGE_RUN = Path("/run/munge")
PARTITION = "debug"
DAEMONS = ["munged", "slurmctld", "slurmd"]  # start order; stopped in reverse


class ClusterUnavailable(RuntimeError):
    """This machine cannot host the test cluster (not root, no apt, a foreign slurm.conf)."""


def _run(cmd: list[str], timeout: float = 30, check: bool = True, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check, **kw)


def _log(msg: str) -> None:
    print(f"[slurm_cluster] {msg}", file=sys.stderr, flush=True)


def unavailable_reason() -> str | None:
    """Why the cluster cannot be brought up here, or None if it can."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root (installs Debian packages, writes /etc/slurm/slurm.conf, runs slurmd)"
    missing = [b for b in BINARIES if not shutil.which(b)]
    if missing and not (shutil.which("apt-get") and shutil.which("dpkg")):
        return f"SLURM is not installed ({', '.join(missing)} missing) and apt-get is unavailable"
    if not shutil.which("setpriv"):
        return "setpriv (util-linux) is missing"
    if CONF.exists() and MARKER not in CONF.read_text(errors="replace"):
        return f"{CONF} exists and was not written by this script; not touching a real cluster"
    return None


def install() -> None:
    if all(shutil.which(b) for b in BINARIES):
        return
    _log(f"installing {' '.join(PACKAGES)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd, limit in (
        (["apt-get", "update", "-qq"], 300),
        (["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES], 600),
    ):
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=limit, env=env)
        if run.returncode != 0:  # an error, not a skip: CI must not pass without the cluster
            raise RuntimeError(f"{' '.join(cmd)} failed: {run.stderr[-2000:]}")


def node_line() -> str:
    """This machine as a NodeName line (CPUs, topology and memory exactly as slurmd sees them)."""
    out = _run(["slurmd", "-C"]).stdout.splitlines()[0]
    fields = [f for f in out.split() if not f.startswith(("NodeName=", "UpTime="))]
    return f"NodeName={socket.gethostname()} NodeAddr=127.0.0.1 {' '.join(fields)} State=UNKNOWN"


def write_conf() -> None:
    host = socket.gethostname()
    conf = f"""{MARKER}
ClusterName=locus
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation={STATE}/ctld
SlurmdSpoolDir={STATE}/slurmd
SlurmctldPidFile={STATE}/slurmctld.pidfile
SlurmdPidFile={STATE}/slurmd.pidfile
SlurmctldLogFile={STATE}/slurmctld.log
SlurmdLogFile={STATE}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
MailProg=/bin/true
MpiDefault=none
ReturnToService=2
# Finished jobs stay visible to squeue for 5 min: the Snakemake plugin polls squeue (no sacct here).
MinJobAge=300
{node_line()}
PartitionName={PARTITION} Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""
    CONF.parent.mkdir(parents=True, exist_ok=True)
    CONF.write_text(conf)


def _pidfile(name: str) -> Path:
    return STATE / "pids" / f"{name}.pid"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) counts as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def _start(name: str, cmd: list[str]) -> int:
    log = open(STATE / f"{name}.out", "ab")
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    _pidfile(name).write_text(str(proc.pid))
    _log(f"started {name} (pid {proc.pid})")
    return proc.pid


def open_processes(pids: list[int]) -> list[int]:
    """pidfds of the processes still there: later signals and waits reach exactly these processes,
    never another one that reuses a PID."""
    fds = []
    for pid in pids:
        try:
            fds.append(os.pidfd_open(pid))
        except ProcessLookupError:
            pass  # already gone
    return fds


def wait_gone(fds: list[int], timeout: float) -> bool:
    """Wait until every process has exited: a pidfd becomes readable when its process ends (an
    event, no polling). False if one is still there after `timeout` s."""
    deadline = time.monotonic() + timeout
    waiting = list(fds)
    while waiting:
        ready, _, _ = select.select(waiting, [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            return False
        waiting = [fd for fd in waiting if fd not in ready]
    return True


def wait_for_line(what: str, log: Path, pattern: str, timeout: float, pids: list[int] = ()) -> None:
    """Return once a line of `log` (from its start) matches `pattern`, reading the lines as
    `tail -F` delivers them; fail at once if a daemon in `pids` exits first (its pidfd turns
    readable), or after `timeout` s."""
    tail = subprocess.Popen(["tail", "-F", "-n", "+1", str(log)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    daemons = open_processes(pids)
    deadline, pending = time.monotonic() + timeout, b""
    try:
        while (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select([tail.stdout, *daemons], [], [], left)
            if set(ready) & set(daemons):
                raise RuntimeError(f"a daemon exited while waiting for {what}; see {STATE}/*.out, *.log")
            if ready:
                *lines, pending = (pending + os.read(tail.stdout.fileno(), 1 << 16)).split(b"\n")
                if any(re.search(pattern, line.decode(errors="replace")) for line in lines):
                    return
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}; see {log}")
    finally:
        tail.kill()
        tail.wait()
        for fd in daemons:
            os.close(fd)


def job_pids(job_id: str = "") -> list[int]:
    """The PIDs of one running SLURM job, or of every job on this node (`scontrol listpids`)."""
    run = _run(["scontrol", "listpids", *([job_id] if job_id else [])], timeout=20, check=False)
    rows = [line.split() for line in run.stdout.splitlines()[1:]]
    return [int(row[0]) for row in rows if row and row[0].isdigit()]


def node_state() -> str:
    try:
        run = _run(["sinfo", "-h", "-N", "-o", "%T"], timeout=10, check=False)
    except subprocess.TimeoutExpired:
        return ""
    return run.stdout.strip() if run.returncode == 0 else ""


def up(timeout: float = 90) -> None:
    """Bring the cluster up; on any failure, stop whatever was started and re-raise."""
    reason = unavailable_reason()
    if reason:
        raise ClusterUnavailable(reason)
    install()
    down()  # a leftover instance of ours (e.g. a killed test run)
    try:
        if STATE.exists():
            shutil.rmtree(STATE)
        for d in ("pids", "ctld", "slurmd"):
            (STATE / d).mkdir(parents=True)
        write_conf()

        # munged: its socket directory must be reachable by everyone (mode 0755), owned by munge.
        MUNGE_RUN.mkdir(parents=True, exist_ok=True)
        for d in (MUNGE_RUN, Path("/var/lib/munge"), Path("/var/log/munge")):
            d.mkdir(parents=True, exist_ok=True)
            shutil.chown(d, "munge", "munge")
        MUNGE_RUN.chmod(0o755)
        if not Path("/etc/munge/munge.key").exists():
            _run(["mungekey", "--create"], timeout=30)
            shutil.chown("/etc/munge/munge.key", "munge", "munge")
        munged = _start(
            "munged",
            ["setpriv", "--reuid=munge", "--regid=munge", "--init-groups", "munged", "--foreground", "--force"],
        )
        # munged logs this once its socket exists and its threads accept requests.
        wait_for_line("munged", STATE / "munged.out", r"Created \d+ work thread", 20, [munged])
        _run(["munge", "-n"], timeout=10)  # credentials work

        ctld = _start("slurmctld", ["slurmctld", "-D", "-i"])
        slurmd = _start("slurmd", ["slurmd", "-D"])
        daemons = [munged, ctld, slurmd]
        wait_for_line("slurmctld", STATE / "slurmctld.log", r"Running as primary controller", timeout, daemons)
        # Ready means a job runs: srun returns once slurmd has registered the node and ran `true`
        # (slurm clients themselves retry the controller's port for its first seconds).
        _run(["srun", "--job-name=locus-ready", "--time=1", "true"], timeout=timeout)
        _log(f"cluster up: node {socket.gethostname()} {node_state()}, partition {PARTITION}")
    except BaseException:
        down()
        raise


def cancel_all_jobs(timeout: float = 30) -> None:
    """Cancel every job of this private cluster and wait (bounded) until their processes are gone."""
    if not shutil.which("scancel") or not _pidfile("slurmctld").exists():
        return
    try:
        running = open_processes(job_pids())  # before scancel, so none can end unseen
        try:
            _run(["scancel", "--full", f"--user={os.geteuid()}"], timeout=15, check=False)  # every job, any state
            if not wait_gone(running, timeout):
                _log(f"jobs still running {timeout:.0f} s after scancel")
        finally:
            for fd in running:
                os.close(fd)
    except subprocess.TimeoutExpired:
        pass


def down(timeout: float = 15) -> None:
    """Stop the daemons `up` recorded (SIGTERM, then SIGKILL after `timeout` s); remove our conf."""
    if not (STATE / "pids").is_dir():
        return
    cancel_all_jobs()
    for name in reversed(DAEMONS):
        pidfile = _pidfile(name)
        if not pidfile.exists():
            continue
        pid = int(pidfile.read_text())
        for fd in open_processes([pid] if _alive(pid) else []):
            signal.pidfd_send_signal(fd, signal.SIGTERM)
            if not wait_gone([fd], timeout):
                _log(f"{name} (pid {pid}) ignored SIGTERM; killing it")
                signal.pidfd_send_signal(fd, signal.SIGKILL)
            os.close(fd)
            _log(f"stopped {name} (pid {pid})")
        pidfile.unlink()
    if CONF.exists() and MARKER in CONF.read_text(errors="replace"):
        CONF.unlink()


def status() -> str:
    lines = []
    for name in DAEMONS:
        pidfile = _pidfile(name)
        pid = int(pidfile.read_text()) if pidfile.exists() else None
        lines.append(
            f"{name}: {'pid ' + str(pid) if pid else 'not started'}"
            f"{'' if pid is None else (' (running)' if _alive(pid) else ' (gone)')}"
        )
    lines.append(f"node: {node_state() or 'unknown'}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    cmd = argv[1] if len(argv) > 1 else "status"
    try:
        if cmd == "up":
            up()
        elif cmd == "down":
            down()
        elif cmd != "status":
            print(__doc__, file=sys.stderr)
            return 2
    except ClusterUnavailable as e:
        print(f"cluster unavailable: {e}", file=sys.stderr)
        return 3
    print(status())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
