"""Executing a run, on the worker that took its task: mark it running, build the stage's config, train
with a heartbeat, progress and cancel checks, then record the outcome (automatic evaluation of a new
policy, registration of the model it made) and tell its round. training/tasks.py's execute_run calls
`run_execute`; the run's lifecycle around it (start, cancel, retry, reap) is training/services/runs.py.

The stage trains in this process (TRAINING_LAUNCHER "inprocess") or in child processes that
training/services/launch.py starts and follows ("accelerate", "slurm"); the outcome is recorded the same
way, and only a stage that succeeded registers a model.
"""

import logging
import threading
import time
import traceback
from typing import Any

from django.conf import settings
from django.db import close_old_connections, transaction
from django.utils import timezone

from audit.services import Action, audit_record

from ..models import RunKind, RunStatus, TrainingRun
from . import auto_evaluation, launch, liveness, outages, registry, runs, stages

log = logging.getLogger(__name__)

LOG_TAIL_CHARS = 8000


class _Reporter:
    """Progress, heartbeat and cancel checks of one executing run, throttled to spare the database."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.last_write = 0.0
        self.last_cancel_check = 0.0
        self.cancelled = False
        self.log_lines: list[str] = []
        self.history: list[dict] = []
        self._stop = threading.Event()
        self._beat = threading.Thread(target=self._heartbeat, name=f"heartbeat-run-{run_id}", daemon=True)

    def start(self) -> None:
        self._beat.start()

    def stop(self) -> None:
        self._stop.set()
        self._beat.join(timeout=10)

    def _heartbeat(self) -> None:
        """Beats every TRAINING_HEARTBEAT_SECONDS; after a failed beat (database down) it tries again every
        second, so the run looks alive again as soon as the database is back."""
        pause = settings.TRAINING_HEARTBEAT_SECONDS
        try:
            while not self._stop.wait(pause):
                beat = outages.attempt(
                    f"run {self.run_id}: heartbeat",
                    lambda: TrainingRun.objects.filter(pk=self.run_id, status=RunStatus.RUNNING).update(
                        heartbeat_at=timezone.now()
                    ),
                )
                pause = settings.TRAINING_HEARTBEAT_SECONDS if beat else min(1.0, pause)
        finally:
            close_old_connections()

    def add_log(self, text: str) -> None:
        """Lines for the log tail, written with the next progress (or flush); only the tail is kept."""
        self.log_lines.append(text)
        if sum(map(len, self.log_lines)) > 2 * LOG_TAIL_CHARS:
            self.log_lines = ["\n".join(self.log_lines)[-LOG_TAIL_CHARS:]]

    def progress(self, event: dict) -> None:
        if event.get("log"):
            self.add_log(str(event["log"]))
        metrics = event.get("metrics") or {}
        if metrics:
            self.history.append({"step": event.get("step", 0), **metrics})
        now = time.monotonic()
        if now - self.last_write < settings.TRAINING_PROGRESS_SECONDS and event.get("step") != event.get(
            "total"
        ):
            return
        self.last_write = now
        if not self.flush(step=event.get("step"), total=event.get("total"), metrics=metrics):
            self.last_write = now - settings.TRAINING_PROGRESS_SECONDS  # not written: try at the next event

    def flush(
        self, *, step: int | None = None, total: int | None = None, metrics: dict | None = None
    ) -> bool:
        """Write the progress; False when the database failed it (training goes on)."""
        fields = {
            "log_tail": "\n".join(self.log_lines)[-LOG_TAIL_CHARS:],
            "metrics_history": self.history,
            "heartbeat_at": timezone.now(),
        }
        if step is not None:
            fields["progress_step"] = int(step)
        if total is not None:
            fields["progress_total"] = int(total)
        if metrics:
            fields["metrics"] = metrics
        return outages.attempt(
            f"run {self.run_id}: progress",
            lambda: TrainingRun.objects.filter(pk=self.run_id).update(**fields),
        )

    def should_stop(self) -> bool:
        now = time.monotonic()
        if not self.cancelled and now - self.last_cancel_check >= 1.0:
            self.last_cancel_check = now
            outages.attempt(f"run {self.run_id}: cancel check", self._check_cancel)
        return self.cancelled

    def _check_cancel(self) -> None:
        self.cancelled = TrainingRun.objects.filter(pk=self.run_id, cancel_requested=True).exists()


def run_execute(*, run_id: int, worker_task_id: str = "") -> TrainingRun | None:
    """Run the training stage of a queued run and record the outcome. Safe against redelivery:
    a run that is no longer queued is left alone."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().filter(pk=run_id).first()
        if run is None or run.status != RunStatus.QUEUED:
            log.info("run %s is not queued (%s); skipping", run_id, run and run.status)
            return run
        run.status, run.started_at, run.heartbeat_at = RunStatus.RUNNING, timezone.now(), timezone.now()
        run.worker_task_id = worker_task_id or run.worker_task_id
        run.worker = liveness.this_process()
        run.save(update_fields=["status", "started_at", "heartbeat_at", "worker_task_id", "worker"])

    reporter = _Reporter(run.pk)
    reporter.start()
    status, error, metrics = RunStatus.SUCCEEDED, "", dict[str, Any]()
    try:
        stage_kind, stage_config = stages.build_config(run)
        reporter.progress({"log": f"{run.kind} run {run.pk}: {stage_config}"})
        if launch.launcher() == "inprocess":
            status, metrics = _train_here(stage_kind, stage_config, reporter)
        else:
            outcome = launch.follow(run, launch.launch_for(run, stage_kind, stage_config), reporter)
            status, error, metrics = RunStatus(outcome.status), outcome.error, outcome.metrics
    except Exception as exc:
        status, error = RunStatus.FAILED, f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()[-4000:]}"
    finally:
        reporter.stop()
        reporter.flush()
    # The outcome is written whatever the database is going through: training is done, only waiting is left.
    if status == RunStatus.SUCCEEDED:
        if run.kind in (RunKind.PPO, RunKind.DPO):
            auto_eval = outages.insist(
                f"run {run.pk}: evaluation", lambda: auto_evaluation.run_auto_evaluate(run, reporter.progress)
            )
            metrics = {**(metrics or {}), "auto_eval": auto_eval}
        outages.insist(f"run {run.pk}: registration", lambda: registry.run_register(run, metrics or {}))
    else:
        outages.insist(f"run {run.pk}: outcome", lambda: _record_end(run, status, error))
        log.warning("run %s %s", run.pk, status)
    outages.insist(f"run {run.pk}: read back", run.refresh_from_db)
    outages.insist(f"run {run.pk}: round", lambda: runs.after_finish(run))
    return run


def _train_here(stage_kind: str, stage_config: dict, reporter: _Reporter) -> tuple[RunStatus, dict]:
    """The stage in this process: (succeeded, metrics) or (cancelled, {}); other errors propagate."""
    from training.ml import TrainingCancelled, run_stage  # torch loads here, on the worker only

    try:
        metrics = run_stage(
            stage_kind, stage_config, progress=reporter.progress, should_stop=reporter.should_stop
        )
    except TrainingCancelled:
        return RunStatus.CANCELLED, {}
    return RunStatus.SUCCEEDED, metrics


@transaction.atomic
def _record_end(run: TrainingRun, status: str, error: str) -> None:
    """A run that did not succeed: failed (with its error) or cancelled."""
    TrainingRun.objects.filter(pk=run.pk).update(status=status, error=error, finished_at=timezone.now())
    if status == RunStatus.FAILED:  # a stop after a cancel was recorded when it was asked for
        run.status = status
        audit_record(
            actor=None, action=Action.RUN_FAILED, target=run, details={"error": runs.first_line(error)}
        )
