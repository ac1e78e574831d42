"""Launching a run's stage as a child process (accelerate launch, or SLURM) and following it.

With TRAINING_LAUNCHER "inprocess" (the default: the demo and CI) the worker trains in its own process
(training/services/execution.py). With "accelerate" it starts

    accelerate launch --config_file training/ml/launch/<name>.yaml -m training.ml <stage> --config <yaml>

in a process group of its own, so a stage can use every GPU of the machine (DDP, FSDP2, DeepSpeed ZeRO),
and follows it through files: the main rank appends progress events to OUT/progress.jsonl, every rank's
output goes to a log file, and a cancel writes OUT/STOP, which every rank honours at its next step
(training.ml agrees the stop over ranks). "slurm" submits the same command to a cluster
(training/services/slurm.py). Every launcher keeps the Launch protocol below, and `follow` turns any of
them into the run's progress, log tail and outcome.

A launch's files live in OUT/launch-run-<id>/ (`LaunchFiles`): a retry uses the same OUT, so it resumes
from the last complete checkpoint, but keeps its own log.
"""

import contextlib
import functools
import importlib
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

import psutil
import yaml
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from core.errors import ServiceError
from training.ml.checkpoints import read_metrics
from training.ml.errors import ConfigError
from training.ml.launch import LAUNCH_CONFIGS, LaunchConfig, launch_config

from ..models import TrainingRun

log = logging.getLogger(__name__)

LAUNCHERS = ("inprocess", "accelerate", "slurm")
EXIT_DONE, EXIT_CANCELLED = 0, 3  # training.ml's exit codes
ERROR_LINES = 40  # the last lines of a failed launch's log, in the run's error
SINGLE_PROCESS_STAGES = ("generate", "tiny")  # not rank-aware: one process, whatever the config
CANCEL_GRACE_SECONDS = 600.0  # a step of a big model, and its checkpoint, may take minutes
KILL_AFTER_SECONDS = 60.0


class Launch(Protocol):
    """One stage running outside the worker's process."""

    def start(self) -> None:
        """Start it; returns once it is started (or submitted)."""

    def poll(self) -> int | None:
        """None while it runs; then its exit code: 0 done, 3 cancelled (after `cancel`), else failed."""

    def cancel(self) -> None:
        """Ask it to stop and return at once: writes OUT/STOP (every rank checkpoints and stops at its next
        step); `poll` escalates to SIGTERM after a grace period and SIGKILL after another.
        Its output goes to LaunchFiles.log, where `follow` reads it."""

    def describe(self) -> str:
        """One line for the run's log: what was started, where, with which config."""


class Reporter(Protocol):
    """What `follow` needs from the run's reporter (execution._Reporter)."""

    def progress(self, event: dict) -> None: ...
    def add_log(self, text: str) -> None: ...
    def flush(self) -> bool: ...
    def should_stop(self) -> bool: ...


def launcher() -> str:
    name = settings.TRAINING_LAUNCHER
    if name not in LAUNCHERS:
        raise ImproperlyConfigured(f"TRAINING_LAUNCHER must be one of {', '.join(LAUNCHERS)}; got {name!r}.")
    return name


def launch_config_clean(name: str | None, *, field: str = "launch_config") -> str:
    """A run's or round's launch config: a shipped config's name (default TRAINING_LAUNCH_CONFIG), never
    a path. ServiceError naming `field` otherwise."""
    name = name or settings.TRAINING_LAUNCH_CONFIG
    try:
        return launch_config(name).name
    except ConfigError as exc:
        raise ServiceError(f"{exc}.", field=field) from None


@dataclass(frozen=True)
class LaunchFiles:
    """Where one run's launch keeps its files: inside the run's output folder."""

    output_dir: Path
    folder: Path

    @classmethod
    def of(cls, run: TrainingRun, stage_config: dict) -> "LaunchFiles":
        out = Path(stage_config["output_dir"])
        return cls(output_dir=out, folder=out / f"launch-run-{run.pk}")

    @property
    def stage_config(self) -> Path:
        return self.folder / "stage.yaml"

    @property
    def log(self) -> Path:
        return self.folder / "output.log"

    @property
    def progress(self) -> Path:
        return self.output_dir / "progress.jsonl"

    @property
    def stop(self) -> Path:
        return self.output_dir / "STOP"

    def prepare(self, stage_config: dict) -> None:
        """The stage's config as YAML for `--config`; a STOP left by an earlier cancel is removed, or the
        retry would stop at once."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.stage_config.write_text(yaml.safe_dump(stage_config, sort_keys=False))
        self.stop.unlink(missing_ok=True)


def accelerate_command(
    config: LaunchConfig,
    stage_kind: str,
    stage_config: Path,
    *,
    num_processes: int | None = None,
    extra: Sequence[str] = ("--main_process_port", "0"),
) -> list[str]:
    """`accelerate launch` of one training.ml stage, with this interpreter (so the worker's environment).
    `extra`: more launch options; by default a free port, as several launches may share a machine (a
    launch over several nodes passes its machine rank, main address and port instead)."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(config.path)]
    if num_processes is not None:
        command += ["--num_processes", str(num_processes)]
    return [*command, *extra, "-m", "training.ml", stage_kind, "--config", str(stage_config)]


def child_env(config: LaunchConfig, processes: int) -> dict[str, str]:
    """The launch's environment: this worker's, with threads shared among the `processes` of one machine."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(settings.BASE_DIR), env.get("PYTHONPATH")]))
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // max(processes, 1))))
    if config.cpu:
        # accelerate's own use_cpu runs one process; this keeps the processes and makes them use gloo.
        env["ACCELERATE_USE_CPU"] = "1"
    return env


def visible_gpus() -> int:
    import torch  # the GPU worker has it; only a config on every GPU asks

    return torch.cuda.device_count()


def configured_processes(config: LaunchConfig) -> int:
    """The processes a config that names its own count (not one on every GPU) starts."""
    return int(yaml.safe_load(config.path.read_text()).get("num_processes", 1))


@dataclass(frozen=True)
class LaunchPlan:
    """What one stage's launch starts: the accelerate config, on how many nodes, with how many processes
    and GPUs on each."""

    config: LaunchConfig
    nodes: int
    processes_per_node: int
    gpus_per_node: int

    @property
    def processes(self) -> int:
        return self.nodes * self.processes_per_node


def launch_plan(
    config: LaunchConfig, stage_kind: str, every_gpu: Callable[[], tuple[int, int]]
) -> LaunchPlan:
    """The plan of `stage_kind` under `config`. Single-process stages (not rank-aware) get one process on
    one node, under the single-GPU config unless the config runs on CPUs; a config on every GPU gets
    `every_gpu()`'s (nodes, GPUs per node), one process per GPU (ImproperlyConfigured from it where there
    are none); any other config the process count its file names."""
    if stage_kind in SINGLE_PROCESS_STAGES:
        config = config if config.cpu else LAUNCH_CONFIGS["single-gpu"]
        return LaunchPlan(config, 1, 1, 0 if config.cpu else 1)
    if config.every_gpu:
        nodes, gpus = every_gpu()
        return LaunchPlan(config, nodes, gpus, gpus)
    processes = configured_processes(config)
    return LaunchPlan(config, 1, processes, 0 if config.cpu else processes)


class StageLaunch:
    """What every launcher shares: the run's launch config and files, the plan (chosen when first asked
    for: on a GPU worker that means importing torch), and a cancel's escalation (STOP at once, then
    `_signal("TERM")` after the grace period and `_signal("KILL")` after another)."""

    def __init__(
        self,
        *,
        run: TrainingRun,
        stage_kind: str,
        stage_config: dict,
        grace_seconds: float = CANCEL_GRACE_SECONDS,
        kill_after_seconds: float = KILL_AFTER_SECONDS,
    ) -> None:
        self.run = run
        self.config = launch_config(run.launch_config or settings.TRAINING_LAUNCH_CONFIG)
        self.files = LaunchFiles.of(run, stage_config)
        self.stage_kind, self.stage_config = stage_kind, stage_config
        self.grace, self.kill_after = grace_seconds, kill_after_seconds
        self.cancelled_at: float | None = None
        self.signalled: set[str] = set()

    @functools.cached_property
    def plan(self) -> LaunchPlan:
        return launch_plan(self.config, self.stage_kind, self._every_gpu)

    def _every_gpu(self) -> tuple[int, int]:
        """(nodes, GPUs per node) for a config on every GPU."""
        raise NotImplementedError

    def _signal(self, name: str) -> None:
        """Send "TERM" or "KILL" to every process of the launch."""
        raise NotImplementedError

    def cancel(self) -> None:
        if self.cancelled_at is None:
            self.cancelled_at = time.monotonic()
            self.files.stop.touch()

    def _escalate(self) -> None:
        if self.cancelled_at is None:
            return
        waited = time.monotonic() - self.cancelled_at
        for name, after in (("TERM", self.grace), ("KILL", self.grace + self.kill_after)):
            if waited >= after and name not in self.signalled:
                self.signalled.add(name)
                log.warning(
                    "run %s: its launch still runs %.0fs after a cancel: %s", self.run.pk, waited, name
                )
                self._signal(name)

    def _ended(self, code: int) -> int:
        """The launch's exit code in the Launch protocol's terms. A stop on request ends every rank with 3,
        which launchers report as a failure (accelerate: 1, SLURM: whatever srun makes of it, or CANCELLED
        after a scancel): the run asked to stop, so any non-zero end is its cancel, as TrainingCancelled
        is in-process."""
        return EXIT_CANCELLED if code != EXIT_DONE and self.cancelled_at is not None else code

    def describe(self) -> str:
        raise NotImplementedError


class AccelerateLaunch(StageLaunch):
    """`accelerate launch` on this machine, in a session of its own (start_new_session), so that the
    worker's own signals do not reach it. torchrun gives each rank a session too: a signal for the launch
    goes to the launcher's group and to each process whose command names the launch's stage config."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.proc: subprocess.Popen | None = None
        self._log: IO[bytes] | None = None
        self.command: list[str] = []

    def _every_gpu(self) -> tuple[int, int]:
        gpus = visible_gpus()
        if gpus < 1:
            raise ImproperlyConfigured(
                f"launch config {self.config.name!r} runs on every GPU, but this worker sees none."
            )
        return 1, gpus

    def start(self) -> None:
        self._stop_earlier_launches()
        self.files.prepare(self.stage_config)
        plan = self.plan
        self.command = accelerate_command(
            plan.config, self.stage_kind, self.files.stage_config, num_processes=plan.processes_per_node
        )
        self._log = self.files.log.open("ab")
        self.proc = subprocess.Popen(
            self.command,
            cwd=settings.BASE_DIR,
            env=child_env(plan.config, plan.processes_per_node),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _stop_earlier_launches(self) -> None:
        """A worker killed while it followed a launch leaves that launch running (the reaper then fails the
        run). Its retry, on the same folder, must not train beside it."""
        for earlier in self.files.output_dir.glob("launch-run-*/stage.yaml"):
            for proc in launch_processes(earlier):
                log.warning("%s: stopping process %s, left running by a worker that died", earlier, proc.pid)
                with contextlib.suppress(psutil.Error):
                    proc.kill()

    def poll(self) -> int | None:
        assert self.proc is not None, "start() first"
        code = self.proc.poll()
        if code is None:
            self._escalate()
            return None
        if self._log:
            self._log.close()
        for leftover in launch_processes(self.files.stage_config):  # a rank the launcher lost track of
            with contextlib.suppress(psutil.Error):
                leftover.kill()
        return self._ended(code)

    def _signal(self, name: str) -> None:
        self.kill(signal.SIGTERM if name == "TERM" else signal.SIGKILL)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the launcher's process group and every rank: torchrun starts each rank in a session of
        its own, so they are found by the stage config their command names."""
        if self.proc is None:
            return
        log.warning("launch %s: sending %s to it and its ranks", self.proc.pid, signal.Signals(sig).name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        for proc in launch_processes(self.files.stage_config):
            with contextlib.suppress(psutil.Error):
                proc.send_signal(sig)

    def describe(self) -> str:
        pid = self.proc.pid if self.proc else "-"
        return f"accelerate launch (config {self.config.name}, pid {pid}): {' '.join(self.command)}"


def launch_processes(stage_config: Path) -> list[psutil.Process]:
    """The processes on this machine of the launch that reads `stage_config`: the launcher and its ranks
    (their command lines name it; another launch's never does)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if str(stage_config) in (proc.info["cmdline"] or []):
            found.append(proc)
    return found


def launch_for(run: TrainingRun, stage_kind: str, stage_config: dict) -> Launch:
    """The Launch of TRAINING_LAUNCHER for this run's stage (not started)."""
    name = launcher()
    if name == "accelerate":
        return AccelerateLaunch(run=run, stage_kind=stage_kind, stage_config=stage_config)
    if name == "slurm":
        try:  # imported by name: only a worker that submits to SLURM needs it
            slurm = importlib.import_module("training.services.slurm")
        except ImportError as exc:
            raise ImproperlyConfigured(
                f"TRAINING_LAUNCHER is 'slurm' but training.services.slurm cannot be imported: {exc}"
            ) from exc
        return slurm.SlurmLaunch(run=run, stage_kind=stage_kind, stage_config=stage_config)
    raise ImproperlyConfigured("TRAINING_LAUNCHER 'inprocess' trains in the worker; it launches nothing.")


@dataclass
class Outcome:
    status: str  # "succeeded" | "failed" | "cancelled" (RunStatus values)
    metrics: dict = field(default_factory=dict)
    error: str = ""


class _Tail:
    """New complete lines of a file that another process appends to (read from an offset)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = path.stat().st_size if path.exists() else 0

    def lines(self) -> list[str]:
        if not self.path.exists():
            return []
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read()
        end = chunk.rfind(b"\n") + 1  # a line still being written waits for the next read
        self.offset += end
        return chunk[:end].decode("utf-8", errors="replace").splitlines()


def follow(run: TrainingRun, launch: Launch, reporter: Reporter, *, every: float = 0.5) -> Outcome:
    """Start `launch` and follow it to its end: progress events into the run (and its heartbeat, which
    the reporter keeps), the launch's output into the log tail, a cancel asked on the run into
    `launch.cancel()`. The launch is never left running when this returns."""
    files = LaunchFiles.of(run, {"output_dir": run.config["output_dir"]})
    progress = _Tail(files.progress)  # from the end: a retry's folder holds the events of earlier runs
    output = _Tail(files.log)
    launch.start()
    reporter.add_log(launch.describe())
    code = None
    try:
        while code is None:
            code = launch.poll()
            _pump(progress, output, reporter)
            if code is None:
                if reporter.should_stop():
                    launch.cancel()
                time.sleep(every)
    finally:
        if code is None:  # this loop failed: nothing trains on without a run following it
            kill = getattr(launch, "kill", None)  # AccelerateLaunch and SlurmLaunch stop at once
            if kill is not None:
                kill()
            else:
                launch.cancel()
    _pump(progress, output, reporter)
    return _outcome(files, code)


def _pump(progress: _Tail, output: _Tail, reporter: Reporter) -> None:
    lines = output.lines()
    if lines:
        reporter.add_log("\n".join(lines))
    for line in progress.lines():
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            continue
        # The event's log repeats what the main rank printed (already in the output) before its own
        # last line, the step's figures.
        reporter.progress({**event, "log": str(event.get("log") or "").rsplit("\n", 1)[-1]})
    if lines:
        reporter.flush()


def _outcome(files: LaunchFiles, code: int) -> Outcome:
    if code == EXIT_CANCELLED:
        return Outcome("cancelled")
    if code != EXIT_DONE:
        lines = files.log.read_text(errors="replace").splitlines() if files.log.exists() else []
        how = f"killed by signal {-code}" if code < 0 else f"exit code {code}"
        cause = next(
            (line for line in lines if _EXCEPTION.match(line) and "ChildFailedError" not in line), ""
        )
        error = f"the training processes failed ({how}){': ' + cause if cause else ''}"
        return Outcome(
            "failed", error=f"{error}\n\nlast lines of the log:\n" + "\n".join(lines[-ERROR_LINES:])
        )
    return Outcome("succeeded", metrics=_final_metrics(files))


# The line a Python traceback ends with ("ValueError: ...") in a rank's output: the first is the cause; the
# launcher's own report (ChildFailedError) follows every failure and only says which rank ended how.
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*(Error|Exception)\b:?")


def _final_metrics(files: LaunchFiles) -> dict[str, Any]:
    """The stage's metrics.json (written last, by the main rank)."""
    try:
        return read_metrics(files.output_dir)
    except (OSError, ValueError):
        return {}
