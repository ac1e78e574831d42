"""A one-node SLURM cluster on this machine, for the tests: Debian's slurm-wlm (`make slurm`) with a
slurm.conf written into a temporary folder, slurmctld and slurmd started in the foreground (-D) as our
own child processes, and SLURM_CONF pointing every client (sbatch, squeue, sacct, scancel, and the
worker that calls them) at it.

No munge: the cluster lives on one machine, so auth/none and cred/none are enough, and there is no
key to create. No cgroups (a container has none to give): proctrack/linuxproc and task/none. No
slurmdbd: sacct then says accounting is disabled, and the launcher reads a finished job's exit from
slurmctld (`scontrol show job`), as it does on a cluster whose accounting lags.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

COMMANDS = ("slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel", "sacct", "scontrol")
NODE = "lw-node1"
PARTITION = "debug"


def missing() -> str:
    """Why this machine cannot run the cluster ("" when it can)."""
    absent = [
        name for name in COMMANDS if shutil.which(name) is None and not Path(f"/usr/sbin/{name}").exists()
    ]
    if absent:
        return f"SLURM is not installed (no {', '.join(absent)}): `make slurm` installs Debian's slurm-wlm"
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs as the submitting user"
    return ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _binary(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


class SlurmCluster:
    """slurmctld + slurmd on localhost, one node with `cpus` CPUs, in `folder`."""

    def __init__(self, folder: Path, *, cpus: int = 2) -> None:
        self.folder = folder
        self.cpus = cpus
        self.conf = folder / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.procs: list[subprocess.Popen] = []

    def write_conf(self) -> None:
        state = self.folder / "state"
        spool = self.folder / "spool"
        state.mkdir(parents=True, exist_ok=True)
        spool.mkdir(parents=True, exist_ok=True)
        host = socket.gethostname().split(".")[0]
        lines = {
            "ClusterName": "loopwork-test",
            "SlurmctldHost": f"{host}(127.0.0.1)",
            "SlurmctldPort": _free_port(),
            "SlurmdPort": _free_port(),
            "SlurmUser": "root",
            "AuthType": "auth/none",
            "CredType": "cred/none",
            "ProctrackType": "proctrack/linuxproc",
            "TaskPlugin": "task/none",
            "JobAcctGatherType": "jobacct_gather/none",
            "AccountingStorageType": "accounting_storage/none",
            "SelectType": "select/cons_tres",
            "SelectTypeParameters": "CR_CPU",
            "SchedulerType": "sched/builtin",
            "MpiDefault": "none",
            "SwitchType": "switch/none",
            "ReturnToService": 2,
            "SlurmdParameters": "config_overrides",
            "StateSaveLocation": state,
            "SlurmdSpoolDir": spool,
            "SlurmctldPidFile": self.folder / "slurmctld.pid",
            "SlurmdPidFile": self.folder / "slurmd.pid",
            "SlurmctldLogFile": self.folder / "slurmctld.log",
            "SlurmdLogFile": self.folder / "slurmd.log",
            "SlurmctldDebug": "info",
            "SlurmdDebug": "info",
            "KillWait": 5,
            "MinJobAge": 600,  # a finished job stays known to slurmctld (no slurmdbd here)
        }
        text = "\n".join(f"{key}={value}" for key, value in lines.items())
        text += f"\nNodeName={NODE} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory=1000 State=UNKNOWN"
        text += f"\nPartitionName={PARTITION} Nodes={NODE} Default=YES MaxTime=INFINITE State=UP\n"
        self.conf.write_text(text)

    def start(self) -> None:
        self.write_conf()
        for command in (
            [_binary("slurmctld"), "-D", "-i", "-f", str(self.conf)],
            [_binary("slurmd"), "-D", "-N", NODE, "-f", str(self.conf)],
        ):
            name = Path(command[0]).name
            self.procs.append(
                subprocess.Popen(
                    command,
                    env=self.env,
                    stdout=(self.folder / f"{name}.out").open("ab"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        self.wait_until_idle()

    def run(self, *args: str) -> str:
        return subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, check=False
        ).stdout.strip()

    def wait_until_idle(self, limit: float = 120) -> None:
        """The node is up when sinfo says idle. The limit only guards against a daemon that never starts."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    raise RuntimeError(f"{proc.args!r} exited ({proc.returncode}):\n{self.logs()}")
            if self.run("sinfo", "-h", "-n", NODE, "-o", "%t") == "idle":
                return
            time.sleep(0.5)
        raise RuntimeError(f"the SLURM node never became idle:\n{self.logs()}")

    def logs(self) -> str:
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-3000:]}"
            for path in sorted(self.folder.glob("*.log")) + sorted(self.folder.glob("*.out"))
        )

    def stop(self) -> None:
        """Every job cancelled, then the daemons stopped (slurmd first: it ends its job steps)."""
        self.run("scancel", "--partition", PARTITION)
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
