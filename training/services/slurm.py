"""A run's stage as a SLURM batch job (TRAINING_LAUNCHER=slurm): the worker runs on a login node (or any
machine with the SLURM clients), submits, and follows the job through the shared output folder.

SLURM is the engine: it allocates the nodes, starts one `accelerate launch` per node (the script
training/ml/launch/slurm.sbatch, rendered with TRAINING_SLURM_* settings), and ends the job. We only call
its command-line clients, as a user would: `sbatch --parsable` to submit, `squeue` while the job lives,
then `sacct` (or `scontrol show job` where there is no accounting database, or it lags) for the exit
code. Progress and the log tail come through the files (`launch.follow`), so MEDIA_ROOT must be a
filesystem every node mounts at the same path. A cancel writes OUT/STOP, which every rank honours at its
next step; a job that does not end within the grace period gets `scancel --signal=TERM`, then `scancel`.
"""

from __future__ import annotations

import logging
import re
import shlex
import string
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from training.ml.launch import FOLDER, LaunchConfig

from .launch import EXIT_DONE, StageLaunch, child_env

log = logging.getLogger(__name__)

TEMPLATE = FOLDER / "slurm.sbatch"
CLIENT_TIMEOUT = 60.0  # a client waits for a busy controller (MessageTimeout); longer is a hang
LIVE_STATES = {"PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED", "REQUEUED", "RESIZING"}
LIVE_STATES |= {"REQUEUE_HOLD", "REQUEUE_FED", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD"}
UNKNOWN_POLLS = 120  # polls (about a minute) that a gone job may stay without a known end
# The worker's secrets stay out of the job's environment (sbatch exports the caller's, and slurmctld
# keeps it with the job): the training processes read files, never the database or the broker.
PRIVATE_ENV = re.compile(r"SECRET|PASSWORD|TOKEN|DATABASE_URL|BROKER_URL|REDIS_URL")


class SlurmError(RuntimeError):
    """A SLURM client refused or failed: its own message, for the run's error."""


class _Script(string.Template):
    delimiter = "@"  # the script is bash: "$" is its own


def slurm(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """One SLURM client call (sbatch, squeue, ...), its output as text, never raising on its exit."""
    return subprocess.run(
        list(args), env=env, capture_output=True, text=True, timeout=CLIENT_TIMEOUT, check=False
    )


def _setting(name: str) -> str:
    value = str(getattr(settings, name))
    if "\n" in value or "\r" in value:
        raise ImproperlyConfigured(f"{name} must be one line (it becomes an #SBATCH line).")
    return value.strip()


def sbatch_options(*, gpus_per_node: int) -> list[str]:
    """The #SBATCH options from settings, beside the ones the script always has."""
    options = [
        f"--{option}={value}"
        for option, value in (
            ("partition", _setting("TRAINING_SLURM_PARTITION")),
            ("account", _setting("TRAINING_SLURM_ACCOUNT")),
            ("time", _setting("TRAINING_SLURM_TIME")),
        )
        if value
    ]
    if gpus_per_node:
        options.append(f"--gpus-per-node={gpus_per_node}")
    for extra in shlex.split(_setting("TRAINING_SLURM_EXTRA_ARGS")):
        if not extra.startswith("-"):
            raise ImproperlyConfigured(
                f"TRAINING_SLURM_EXTRA_ARGS: write each sbatch option as --name=value; got {extra!r}."
            )
        options.append(extra)
    return options


def job_environment(config: LaunchConfig, processes: int) -> dict[str, str]:
    """What sbatch exports to the job: the launch's environment, less the worker's secrets and any
    SLURM_* of an allocation the worker itself may run in (SLURM_CONF, the clients' own, stays)."""
    env = child_env(config, processes)
    return {
        key: value
        for key, value in env.items()
        if not PRIVATE_ENV.search(key) and (not key.startswith("SLURM_") or key == "SLURM_CONF")
    }


class SlurmLaunch(StageLaunch):
    """One stage as one SLURM batch job. The job's id is kept in the launch folder, so that a retry (same
    output folder) cancels a job a dead worker left behind before it submits its own."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = ""
        self.unknown_polls = 0

    def _every_gpu(self) -> tuple[int, int]:
        nodes, gpus = settings.TRAINING_SLURM_NODES, settings.TRAINING_SLURM_GPUS_PER_NODE
        if nodes < 1 or gpus < 1:
            raise ImproperlyConfigured(
                "TRAINING_SLURM_NODES and TRAINING_SLURM_GPUS_PER_NODE must be at least 1 "
                f"for launch config {self.config.name!r}."
            )
        return nodes, gpus

    @property
    def script(self) -> Path:
        return self.files.folder / "job.sbatch"

    @property
    def job_id_file(self) -> Path:
        return self.files.folder / "slurm-job-id"

    def render(self) -> str:
        plan = self.plan
        values = {
            "job_name": f"loopwork-run-{self.run.pk}-{self.stage_kind}",
            "nodes": plan.nodes,
            "log": self.files.log,
            "workdir": settings.BASE_DIR,
            "sbatch_lines": "\n".join(
                f"#SBATCH {option}" for option in sbatch_options(gpus_per_node=plan.gpus_per_node)
            ),
            "python": shlex.quote(sys.executable),  # the worker's environment, at the same path on every node
            "accelerate_config": shlex.quote(str(plan.config.path)),
            "processes_per_node": plan.processes_per_node,
            "stage": shlex.quote(self.stage_kind),
            "stage_config": shlex.quote(str(self.files.stage_config)),
        }
        return _Script(TEMPLATE.read_text()).substitute(values)

    def start(self) -> None:
        self._cancel_earlier_jobs()
        self.files.prepare(self.stage_config)
        self.script.write_text(self.render())
        submitted = slurm(
            "sbatch",
            "--parsable",
            str(self.script),
            env=job_environment(self.plan.config, self.plan.processes_per_node),
        )
        if submitted.returncode != 0:
            raise SlurmError(
                f"sbatch refused the job: {submitted.stderr.strip() or submitted.stdout.strip()}"
            )
        self.job_id = submitted.stdout.strip().split(";")[0]  # "id" or "id;cluster"
        self.job_id_file.write_text(self.job_id)

    def _cancel_earlier_jobs(self) -> None:
        """A worker killed while it followed a job leaves the job running (the reaper then fails the run).
        Its retry, on the same folder, must not train beside it."""
        for earlier in self.files.output_dir.glob("launch-run-*/slurm-job-id"):
            job_id = earlier.read_text().strip()
            if job_id and self._state(job_id) in LIVE_STATES:
                log.warning(
                    "%s: cancelling SLURM job %s, left running by a worker that died", earlier, job_id
                )
                slurm("scancel", job_id)

    def _state(self, job_id: str) -> str | None:
        """The job's state while SLURM's queue lists it; "" once it is gone; None when the queue cannot be
        read now (a busy or restarting controller): that is not an end."""
        try:
            queue = slurm("squeue", "-h", "-j", job_id, "-o", "%T")
        except subprocess.TimeoutExpired:
            return None
        if queue.returncode == 0:
            return queue.stdout.strip().split("\n")[0]
        if "Invalid job id" in queue.stderr:
            return ""
        log.warning("squeue for job %s: %s", job_id, queue.stderr.strip())
        return None

    def poll(self) -> int | None:
        assert self.job_id, "start() first"
        state = self._state(self.job_id)
        if state is None or state in LIVE_STATES:
            self._escalate()
            return None
        end = self._end()
        if end is None:
            self.unknown_polls += 1
            if self.unknown_polls < UNKNOWN_POLLS:
                return None
            end = ("UNKNOWN", "1:0")
        state, exit_code = end
        self._note(f"slurm job {self.job_id}: {state}, exit code {exit_code}")
        return self._ended(_exit(state, exit_code))

    def _end(self) -> tuple[str, str] | None:
        """(State, ExitCode "code:signal") of the ended job: from sacct, else from slurmctld's memory of it
        (no accounting database, or accounting that has not caught up). None while neither knows."""
        for args, parse in (
            (("sacct", "-n", "-P", "-X", "-j", self.job_id, "-o", "State,ExitCode"), _sacct_end),
            (("scontrol", "show", "job", "-o", self.job_id), _scontrol_end),
        ):
            try:
                answer = slurm(*args)
            except subprocess.TimeoutExpired:
                continue
            end = parse(answer.stdout) if answer.returncode == 0 else None
            if end and end[0].split()[0] not in LIVE_STATES:
                return end
        return None

    def _note(self, line: str) -> None:
        """A line of ours in the job's log, after its own output: the run's log tail and error show it."""
        with self.files.log.open("a") as handle:
            handle.write(line + "\n")

    def _signal(self, name: str) -> None:
        if name == "TERM":
            slurm("scancel", "--signal=TERM", self.job_id)  # to the job's steps; the job lives on
        else:
            self.kill()

    def kill(self) -> None:
        """End the job now (SLURM sends SIGTERM, then SIGKILL after its KillWait)."""
        if self.job_id:
            log.warning("slurm job %s: cancelling it", self.job_id)
            slurm("scancel", self.job_id)

    def describe(self) -> str:
        plan = self.plan
        return (
            f"slurm job {self.job_id or '-'} (config {plan.config.name}, {plan.nodes} node(s) x "
            f"{plan.processes_per_node} process(es), {plan.gpus_per_node} GPU(s) per node): sbatch {self.script}"
        )


def _sacct_end(text: str) -> tuple[str, str] | None:
    line = text.strip().split("\n")[0]
    state, _, exit_code = line.partition("|")
    return (state, exit_code) if state and exit_code else None


def _scontrol_end(text: str) -> tuple[str, str] | None:
    fields = dict(re.findall(r"(\w+)=(\S*)", text))
    return (fields["JobState"], fields["ExitCode"]) if "JobState" in fields and "ExitCode" in fields else None


def _exit(state: str, exit_code: str) -> int:
    """An exit code in Popen's terms from SLURM's state and "code:signal": 0 only for a job that
    COMPLETED with 0; a signal as its negative; an end without either (TIMEOUT, NODE_FAIL) as 1."""
    code_text, _, signal_text = exit_code.partition(":")
    code = int(code_text) if code_text.isdigit() else 1
    signum = int(signal_text) if signal_text.isdigit() else 0
    if state == "COMPLETED" and code == 0 and signum == 0:
        return EXIT_DONE
    return code or (-signum if signum else 1)
