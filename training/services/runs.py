"""Training runs: start, cancel, reap runs whose worker died, retry. Executing one, on the worker, is
training/services/execution.py; registering what it made, training/services/registry.py.

Lifecycle: queued -> running -> succeeded | failed | cancelled. A running run writes a heartbeat every
TRAINING_HEARTBEAT_SECONDS from a side thread, and its progress at most every TRAINING_PROGRESS_SECONDS.
A worker killed mid-run leaves a stale heartbeat; `runs_reap_stale` (a periodic task) marks such runs
failed. Their output folder keeps its checkpoints, and `run_retry` starts a new run on the same folder,
which resumes from the last checkpoint. We fail-and-offer-retry rather than re-queue automatically so a
run that kills its worker (out of memory, say) does not loop forever. A run whose task message was lost
never started, so it is sent again (`runs_recover_queued`, part of the recovery sweep).
"""

import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q, QuerySet
from django.utils import timezone

from audit.services import Action, audit_record
from core.dispatch import BROKER_ERRORS, QueueUnavailable, check_queue, resend_queued, uses_broker
from core.errors import ServiceError
from labeling.models import DatasetSnapshot

from .. import dispatch
from ..models import ModelVersion, Round, RoundStatus, RunStatus, TrainingRun
from . import launch, liveness, run_settings, stages

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

log = logging.getLogger(__name__)

FINISHED = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
ACTIVE = (RunStatus.QUEUED, RunStatus.RUNNING)


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
    created_by: "User | None" = None,
    round: Round | None = None,
    retry_of: TrainingRun | None = None,
    launch_config: str = "",
) -> TrainingRun:
    """Validate the inputs, store a queued run and send it to the gpu queue once committed.
    `config` holds the client's hyperparameters only (run_settings); the run's folder is the server's:
    MEDIA_ROOT/runs/run-<id>, or the folder of the run it retries, so that it resumes.
    `created_by` is who started it (for a round's runs, who started the round; None: a schedule).
    `launch_config`: a shipped accelerate config's name (default TRAINING_LAUNCH_CONFIG), for a worker
    that launches stages as child processes."""
    stages.validate_inputs(kind=kind, base_model=base_model, snapshots=snapshots, reward_model=reward_model)
    launch_config = launch.launch_config_clean(launch_config)
    settings = run_settings.settings_clean(kind=kind, settings=config if config is not None else {})
    check_queue()
    with transaction.atomic():
        run = TrainingRun.objects.create(
            kind=kind,
            base_model=base_model,
            reward_model=reward_model,
            config=settings,
            created_by=created_by,
            round=round,
            sent_at=timezone.now(),
            launch_config=launch_config,
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
    except BROKER_ERRORS as exc:
        # Nothing half-made: a run that never reached the queue is removed again.
        TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).delete()
        raise QueueUnavailable(type(exc).__name__) from exc


def _queue(run: TrainingRun) -> None:
    task_id = dispatch.send_named(dispatch.EXECUTE_RUN, run.pk)
    if task_id:
        TrainingRun.objects.filter(pk=run.pk, status=RunStatus.QUEUED).update(worker_task_id=task_id)


def run_cancel(*, run: TrainingRun, actor: "User | AnonymousUser | None" = None) -> TrainingRun:
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
        after_finish(run)
    return run


def run_retry(*, run: TrainingRun, created_by: "User | None" = None) -> TrainingRun:
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
        launch_config=run.launch_config,
    )


def first_line(error: str) -> str:
    return error.splitlines()[0][:500] if error else ""


def after_finish(run: TrainingRun) -> None:
    """A run of a running round ended: ask for the round's next step. Its reason is committed, so a broker
    that stays down is no error here: the recovery sweep advances every running round that waits on
    nothing. Sent by task name: the round's steps start runs, so runs do not import rounds."""
    if run.round is None or run.round.status != RoundStatus.RUNNING:
        return
    if not dispatch.send_follow_up(dispatch.ADVANCE_ROUND, run.round_id):
        log.warning(
            "round %s: its next step is left to the recovery sweep (the broker is down)", run.round_id
        )


def runs_reap_stale() -> list[int]:
    """Mark failed every running run whose heartbeat is older than TRAINING_STALE_SECONDS and whose
    process is not alive: a run that could not beat through a database outage is still training."""
    cutoff = timezone.now() - timedelta(seconds=settings.TRAINING_STALE_SECONDS)
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
            after_finish(run)
    return reaped


def _mark_failed(run: TrainingRun, error: str, **still: Any) -> bool:
    """Fail the run if it still is as `still` says, with its audit event. A conditional update: of two
    sweeps that judged the same run, one fails it and the other finds nothing to do."""
    with transaction.atomic():
        updated = TrainingRun.objects.filter(pk=run.pk, **still).update(
            status=RunStatus.FAILED, finished_at=timezone.now(), error=error
        )
        if updated:
            run.refresh_from_db()
            audit_record(
                actor=None, action=Action.RUN_FAILED, target=run, details={"error": first_line(error)}
            )
    return bool(updated)


def runs_recover_queued(*, runs: QuerySet | None = None) -> dict[str, list[int]]:
    """Runs whose task message was lost (Redis restarted empty, a send after the commit failed) would
    stay queued forever. A run still queued TRAINING_RESEND_SECONDS after its last send is sent again:
    run_execute skips a run that started already, so a message that was only slow costs nothing. While
    the queue cannot be reached, a run queued longer than TRAINING_QUEUED_LIMIT_SECONDS is failed
    instead, so that its round ends with a reason rather than waiting forever. `runs`: these queued runs,
    whatever their age (start_round --resume)."""
    if not uses_broker():
        return {"resent": [], "failed": []}  # no message to lose: the run's thread is in its own process
    if runs is None:
        due = timezone.now() - timedelta(seconds=settings.TRAINING_RESEND_SECONDS)
        runs = TrainingRun.objects.filter(Q(sent_at__lt=due) | Q(sent_at__isnull=True, created_at__lt=due))
    return resend_queued(
        list(runs.filter(status=RunStatus.QUEUED)),
        label="run",
        queued_limit_seconds=settings.TRAINING_QUEUED_LIMIT_SECONDS,
        send_again=_queue,
        fail_unsent=_fail_unsent,
    )


def _fail_unsent(run: TrainingRun) -> bool:
    limit = settings.TRAINING_QUEUED_LIMIT_SECONDS
    error = (
        f"never started: queued since {run.created_at:%Y-%m-%d %H:%M:%S} UTC, longer than "
        f"TRAINING_QUEUED_LIMIT_SECONDS ({limit} s), while the task queue could not be reached. "
        "Retry the run once Redis and the workers are back."
    )
    if not _mark_failed(run, error, status=RunStatus.QUEUED):
        return False
    after_finish(run)
    return True


def runs_stop(
    *, runs: Sequence[TrainingRun], error: str, actor: "User | AnonymousUser | None" = None
) -> None:
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
