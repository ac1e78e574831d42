"""Training runs: start, execute (on a worker), cancel, reap runs whose worker died, retry.

Lifecycle: queued -> running -> succeeded | failed | cancelled. A running run writes a heartbeat every
TRAINING_HEARTBEAT_SECONDS from a side thread, and its progress at most every TRAINING_PROGRESS_SECONDS.
A worker killed mid-run leaves a stale heartbeat; `runs_reap_stale` (a periodic task) marks such runs
failed. Their output folder keeps its checkpoints, and `run_retry` starts a new run on the same folder,
which resumes from the last checkpoint. We fail-and-offer-retry rather than re-queue automatically so a
run that kills its worker (out of memory, say) does not loop forever. A run whose task message was lost
never started, so it is sent again (`runs_recover_queued`, part of the recovery sweep).
"""

import logging
import threading
import time
import traceback
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import close_old_connections, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.services import Action, audit_record
from labeling.errors import ServiceError
from labeling.models import DatasetSnapshot
from labeling.services.exports import snapshot_path

from .. import dispatch
from ..models import ModelKind, ModelVersion, RunKind, RunStatus, TrainingRun
from . import liveness, outages, run_settings, stages

log = logging.getLogger(__name__)

FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)
LOG_TAIL_CHARS = 8000


class RunRefused(ServiceError):
    pass


def run_folder(run: TrainingRun) -> Path:
    return Path(settings.MEDIA_ROOT) / "runs" / f"run-{run.pk}"


def run_start(
    *,
    kind: str,
    base_model: ModelVersion,
    snapshots: Sequence[DatasetSnapshot] = (),
    reward_model: ModelVersion | None = None,
    config: dict | None = None,
    created_by=None,
    round=None,
    retry_of: TrainingRun | None = None,
) -> TrainingRun:
    """Validate the inputs, store a queued run and send it to the gpu queue once committed.
    `config` holds the client's hyperparameters only (run_settings); the run's folder is the server's:
    MEDIA_ROOT/runs/run-<id>, or the folder of the run it retries, so that it resumes.
    `created_by` is who started it (for a round's runs, who started the round; None: a schedule)."""
    stages.validate_inputs(kind=kind, base_model=base_model, snapshots=snapshots, reward_model=reward_model)
    settings = run_settings.settings_clean(kind=kind, settings=config if config is not None else {})
    dispatch.check_queue()
    with transaction.atomic():
        run = TrainingRun.objects.create(
            kind=kind,
            base_model=base_model,
            reward_model=reward_model,
            config=settings,
            created_by=created_by,
            round=round,
            sent_at=timezone.now(),
        )
        run.snapshots.set(snapshots)
        run.config["output_dir"] = retry_of.config["output_dir"] if retry_of else str(run_folder(run))
        run.save(update_fields=["config"])
        audit_record(
            actor=created_by,
            action=Action.RUN_RETRIED if retry_of else Action.RUN_STARTED,
            target=run,
            details={
                "kind": kind,
                "base_model": base_model.pk,
                "reward_model": reward_model.pk if reward_model else None,
                "snapshots": sorted(s.pk for s in snapshots),
                "round": round.pk if round else None,
                **({"retry_of": retry_of.pk} if retry_of else {}),
            },
        )
    _send(run)
    return run


def _send(run: TrainingRun) -> None:
    try:
        _queue(run)
    except dispatch.BROKER_ERRORS as exc:
        # Nothing half-made: a run that never reached the queue is removed again.
        TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).delete()
        raise dispatch.QueueUnavailable(type(exc).__name__) from exc


def _queue(run: TrainingRun) -> None:
    from ..tasks import execute_run

    task_id = dispatch.send(execute_run, run.pk)
    if task_id:
        TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(worker_task_id=task_id)


def run_cancel(*, run: TrainingRun, actor=None) -> TrainingRun:
    """Ask the run to stop: a queued run is cancelled now, a running one at its next step."""
    with transaction.atomic():
        run = TrainingRun.objects.select_for_update().get(pk=run.pk)
        if run.status in FINISHED:
            raise RunRefused(f"run {run.pk} already {run.status}.")
        run.cancel_requested = True
        fields = ["cancel_requested"]
        if run.status == RunStatus.QUEUED:
            run.status, run.finished_at = RunStatus.CANCELLED, timezone.now()
            fields += ["status", "finished_at"]
        run.save(update_fields=fields)
        audit_record(actor=actor, action=Action.RUN_CANCELLED, target=run, details={"status": run.status})
    if run.status == RunStatus.CANCELLED:
        _after_finish(run)
    return run


def run_retry(*, run: TrainingRun, created_by=None) -> TrainingRun:
    """A new run with the same inputs and output folder, so it resumes from the last checkpoint."""
    if run.status not in (RunStatus.FAILED, RunStatus.CANCELLED):
        raise RunRefused(f"only a failed or cancelled run can be retried; run {run.pk} is {run.status}.")
    return run_start(
        kind=run.kind,
        base_model=run.base_model,
        snapshots=list(run.snapshots.all()),
        reward_model=run.reward_model,
        config={k: v for k, v in run.config.items() if k != "output_dir"},
        created_by=created_by or run.created_by,
        round=run.round,
        retry_of=run,
    )


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

    def progress(self, event: dict) -> None:
        if event.get("log"):
            self.log_lines.append(str(event["log"]))
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

    def flush(self, *, step=None, total=None, metrics=None) -> bool:
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

    from training.ml import TrainingCancelled, run_stage  # torch loads here, on the worker only

    reporter = _Reporter(run.pk)
    reporter.start()
    status, error, metrics = RunStatus.SUCCEEDED, "", {}
    try:
        stage_kind, stage_config = stages.build_config(run)
        reporter.progress({"log": f"{run.kind} run {run.pk}: {stage_config}"})
        metrics = run_stage(
            stage_kind, stage_config, progress=reporter.progress, should_stop=reporter.should_stop
        )
    except TrainingCancelled:
        status = RunStatus.CANCELLED
    except Exception as exc:
        status, error = RunStatus.FAILED, f"{type(exc).__name__}: {exc}\n\n{traceback.format_exc()[-4000:]}"
    finally:
        reporter.stop()
        reporter.flush()
    # The outcome is written whatever the database is going through: training is done, only waiting is left.
    if status == RunStatus.SUCCEEDED:
        if run.kind in (RunKind.PPO, RunKind.DPO):
            auto_eval = outages.insist(f"run {run.pk}: evaluation", lambda: _auto_evaluate(run, reporter))
            metrics = {**(metrics or {}), "auto_eval": auto_eval}
        outages.insist(f"run {run.pk}: registration", lambda: _succeed(run, metrics or {}))
    else:
        outages.insist(f"run {run.pk}: outcome", lambda: _record_end(run, status, error))
        log.warning("run %s %s", run.pk, status)
    outages.insist(f"run {run.pk}: read back", run.refresh_from_db)
    outages.insist(f"run {run.pk}: round", lambda: _after_finish(run))
    return run


@transaction.atomic
def _record_end(run: TrainingRun, status: str, error: str) -> None:
    """A run that did not succeed: failed (with its error) or cancelled."""
    TrainingRun.objects.filter(pk=run.pk).update(status=status, error=error, finished_at=timezone.now())
    if status == RunStatus.FAILED:  # a stop after a cancel was recorded when it was asked for
        run.status = status
        audit_record(actor=None, action=Action.RUN_FAILED, target=run, details={"error": _first_line(error)})


def _auto_evaluate(run: TrainingRun, reporter: _Reporter) -> dict:
    """Issue 7's automatic evaluation of a new policy: RM win rate over its parent, RM held-out
    accuracy, KL to the SFT model. On the valid split, or the train split when there is no valid one
    (small datasets; the result says which). A failure is reported, never fails the run."""
    from training.evaluation import auto_evaluate
    from training.ml.errors import DatasetError

    data = stages.data_snapshot(run.kind, list(run.snapshots.all()))
    common = {
        "policy_dir": run.config["output_dir"],
        "parent_dir": run.base_model.checkpoint,
        "reward_model_dir": run.reward_model.checkpoint if run.reward_model else None,
        "sft_dir": run.base_model.checkpoint,
        "prompts_file": str(snapshot_path(data)),
        "max_prompts": int(run.config.get("auto_eval_prompts", 32)),
        "max_new_tokens": 32,
    }
    for split in ("valid", "train"):
        try:
            result = auto_evaluate(split=split, **common)
        except DatasetError:
            continue
        except Exception as exc:
            log.exception("automatic evaluation of run %s", run.pk)
            return {"error": f"{type(exc).__name__}: {exc}"}
        reporter.progress({"log": f"automatic evaluation on the {split} split: {result}"})
        return {**result, "split": split}
    return {"error": "no prompts to evaluate on"}


@transaction.atomic
def _succeed(run: TrainingRun, metrics: dict) -> None:
    """Record the result: a ModelVersion with its lineage (all or nothing), then mark the run done.
    Written once: a retry after a commit whose answer the outage swallowed finds it done."""
    run = TrainingRun.objects.select_for_update().get(pk=run.pk)
    if run.status == RunStatus.SUCCEEDED:
        return
    clean = {
        k: v for k, v in metrics.items() if isinstance(v, int | float | str | bool | list | dict | type(None))
    }
    if run.kind != RunKind.GENERATE:
        model = ModelVersion.objects.create(
            name=f"{run.kind}-run{run.pk}" + (f"-round{run.round.number}" if run.round_id else ""),
            kind=ModelKind(run.kind),
            parent=run.base_model,
            checkpoint=run.config["output_dir"],
            metrics=clean,
            config={**run.config, "reward_model": run.reward_model_id},
        )
        model.snapshots.set(run.snapshots.all())
        run.output_model = model
    run.status, run.metrics, run.finished_at = RunStatus.SUCCEEDED, clean, timezone.now()
    run.progress_step = max(run.progress_step, run.progress_total)
    run.save(update_fields=["status", "metrics", "finished_at", "output_model", "progress_step"])
    audit_record(
        actor=None, action=Action.RUN_SUCCEEDED, target=run, details={"model_version": run.output_model_id}
    )


def _first_line(error: str) -> str:
    return error.splitlines()[0][:500] if error else ""


def _after_finish(run: TrainingRun) -> None:
    if run.round_id:
        from .rounds import round_on_run_finished

        round_on_run_finished(run=run)


def runs_reap_stale() -> list[int]:
    """Mark failed every running run whose heartbeat is older than TRAINING_STALE_SECONDS and whose
    process is not alive: a run that could not beat through a database outage is still training."""
    cutoff = timezone.now() - timezone.timedelta(seconds=settings.TRAINING_STALE_SECONDS)
    stale = list(TrainingRun.objects.filter(status=RunStatus.RUNNING, heartbeat_at__lt=cutoff))
    alive = liveness.alive_runs(stale)
    reaped = []
    for run in stale:
        if run.pk in alive:
            log.info(
                "run %s: heartbeat is stale but its process %s is alive; left running", run.pk, run.worker
            )
            continue
        error = (
            f"the worker stopped responding (last heartbeat {run.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC). "
            "Checkpoints written so far are kept; retry the run to resume from the last one."
        )
        if _mark_failed(run, error, status=RunStatus.RUNNING, heartbeat_at__lt=cutoff):
            reaped.append(run.pk)
            _after_finish(run)
    return reaped


def _mark_failed(run: TrainingRun, error: str, **still) -> bool:
    """Fail the run if it still is as `still` says, with its audit event. A conditional update: of two
    sweeps that judged the same run, one fails it and the other finds nothing to do."""
    with transaction.atomic():
        updated = TrainingRun.objects.filter(pk=run.pk, **still).update(
            status=RunStatus.FAILED, finished_at=timezone.now(), error=error
        )
        if updated:
            run.refresh_from_db()
            audit_record(
                actor=None, action=Action.RUN_FAILED, target=run, details={"error": _first_line(error)}
            )
    return bool(updated)


def runs_recover_queued(*, runs: QuerySet | None = None) -> dict[str, list[int]]:
    """Runs whose task message was lost (Redis restarted empty, a send after the commit failed) would
    stay queued forever. A run still queued TRAINING_RESEND_SECONDS after its last send is sent again:
    run_execute skips a run that started already, so a message that was only slow costs nothing. While
    the queue cannot be reached, a run queued longer than TRAINING_QUEUED_LIMIT_SECONDS is failed
    instead, so that its round ends with a reason rather than waiting forever. `runs`: these queued runs,
    whatever their age (start_round --resume)."""
    if not dispatch.uses_broker():
        return {"resent": [], "failed": []}  # no message to lose: the run's thread is in its own process
    if runs is None:
        due = timezone.now() - timedelta(seconds=settings.TRAINING_RESEND_SECONDS)
        runs = TrainingRun.objects.filter(Q(sent_at__lt=due) | Q(sent_at__isnull=True, created_at__lt=due))
    queued = list(runs.filter(status=RunStatus.QUEUED))
    if not queued:
        return {"resent": [], "failed": []}
    try:
        dispatch.check_queue()
    except dispatch.QueueUnavailable:
        limit = timezone.now() - timedelta(seconds=settings.TRAINING_QUEUED_LIMIT_SECONDS)
        return {"resent": [], "failed": [r.pk for r in queued if r.created_at < limit and _fail_unsent(r)]}
    return {"resent": [r.pk for r in queued if _resend(r)], "failed": []}


def _resend(run: TrainingRun) -> bool:
    """Send a queued run again. The update that claims it names the send time it read, so of two sweeps
    only one sends."""
    claimed = TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED, sent_at=run.sent_at).update(
        sent_at=timezone.now()
    )
    if not claimed:
        return False
    log.warning("run %s is still queued since %s: sending it again (a lost message?)", run.pk, run.created_at)
    try:
        _queue(run)
    except dispatch.BROKER_ERRORS as exc:
        log.warning("run %s: sending it again failed (%s); the next sweep tries again", run.pk, exc)
        return False
    return True


def _fail_unsent(run: TrainingRun) -> bool:
    limit = settings.TRAINING_QUEUED_LIMIT_SECONDS
    error = (
        f"never started: queued since {run.created_at:%Y-%m-%d %H:%M:%S} UTC, longer than "
        f"TRAINING_QUEUED_LIMIT_SECONDS ({limit} s), while the task queue could not be reached. "
        "Retry the run once Redis and the workers are back."
    )
    if not _mark_failed(run, error, status=RunStatus.QUEUED):
        return False
    _after_finish(run)
    return True


def runs_stop(*, runs: Sequence[TrainingRun], error: str, actor=None) -> None:
    """Stop the unfinished runs of a round that is failed from outside (its process is gone, or an
    operator failed it). A run whose process is alive is asked to stop, as a cancel; a queued run, or a
    running one whose process is gone, is failed with `error`. Its checkpoints stay for a retry."""
    alive = liveness.alive_runs([r for r in runs if r.status == RunStatus.RUNNING])
    for run in runs:
        if run.pk not in alive:
            _mark_failed(run, error, status=run.status)  # as judged: not one that started meanwhile
            continue
        try:
            run_cancel(run=run, actor=actor)
        except RunRefused:
            pass  # it ended meanwhile
