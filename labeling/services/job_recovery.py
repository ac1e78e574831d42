"""No job waits forever (jobs_recover, the periodic task labeling.tasks.recover_jobs, every minute): a job whose
message was lost is sent again, or failed once it has waited past JOB_QUEUED_LIMIT_SECONDS while the queue
cannot be reached; a job running without progress for JOB_RUNNING_LIMIT_SECONDS (its worker died, or its
outcome could not be written) is failed. Starting and running jobs: labeling/services/jobs.py.
"""

import logging
from datetime import timedelta
from typing import Any

from celery import (
    current_app as app,  # the project's Celery app (config/celery.py), without importing the project
)
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from core import dispatch
from core.errors import ServiceError

from ..models import Job, JobKind, JobStatus
from .jobs import RUN_JOB, remove_upload

log = logging.getLogger(__name__)


def jobs_recover() -> dict[str, list[int]]:
    """The periodic sweep: no job stays queued or running forever for want of a message or a worker."""
    return {**_recover_queued(), "stalled": _fail_stalled()}


def _recover_queued() -> dict[str, list[int]]:
    """A job still queued JOB_RESEND_SECONDS after its last send (Redis restarted empty, the send after
    the commit failed) is sent again: the task skips a job taken already, so a message that was only slow
    costs nothing. While the queue cannot be reached, a job queued longer than JOB_QUEUED_LIMIT_SECONDS is
    failed instead, so that whoever started it learns why."""
    if not dispatch.uses_broker():
        return {"resent": [], "failed": []}  # no message to lose: the job's thread was started at once
    due = timezone.now() - timedelta(seconds=settings.JOB_RESEND_SECONDS)
    queued = list(
        Job.objects.filter(status=JobStatus.QUEUED).filter(
            Q(sent_at__lt=due) | Q(sent_at__isnull=True, created_at__lt=due)
        )
    )
    return dispatch.resend_queued(
        queued,
        label="job",
        queued_limit_seconds=settings.JOB_QUEUED_LIMIT_SECONDS,
        send_again=lambda job: dispatch.send(app.tasks[RUN_JOB], job.pk),
        fail_unsent=_fail_unsent,
    )


def _start_again(job: Job) -> str:
    return "Start the export again." if job.kind == JobKind.EXPORT else "Upload the file again."


def _fail_unsent(job: Job) -> bool:
    limit = settings.JOB_QUEUED_LIMIT_SECONDS
    message = (
        f"never started: queued since {job.created_at:%Y-%m-%d %H:%M:%S} UTC, longer than "
        f"JOB_QUEUED_LIMIT_SECONDS ({limit} s), while the task queue could not be reached. Check that Redis "
        f"and the workers are running; nothing was imported or exported. {_start_again(job)}"
    )
    return _fail(job, message, "queue_unavailable", status=JobStatus.QUEUED, sent_at=job.sent_at)


def _fail_stalled() -> list[int]:
    """Fail every job running without progress for JOB_RUNNING_LIMIT_SECONDS. Judged by time, not by
    asking for its process: a pool process outlives the job it ran (an outcome that could not be written
    leaves a live pid), a worker may not answer Celery's inspect in time, and the demo has no workers to
    ask. A job failed by mistake keeps nothing: its outcome is written in its work's transaction."""
    limit = settings.JOB_RUNNING_LIMIT_SECONDS
    cutoff = timezone.now() - timedelta(seconds=limit)
    stalled = Job.objects.filter(status=JobStatus.RUNNING).filter(
        Q(progress_at__lt=cutoff) | Q(progress_at__isnull=True, started_at__lt=cutoff)
    )
    failed = []
    for job in stalled:
        last = job.progress_at or job.started_at
        message = (
            f"stopped: no progress since {last:%Y-%m-%d %H:%M:%S} UTC, longer than JOB_RUNNING_LIMIT_SECONDS "
            f"({limit} s). Its worker died or could not record the outcome; nothing of it was kept. "
            f"{_start_again(job)}"
        )
        if _fail(job, message, "stalled", status=JobStatus.RUNNING, progress_at=job.progress_at):
            failed.append(job.pk)
    return failed


def _fail(job: Job, message: str, code: str, **still: Any) -> bool:
    """Fail the job if it still is as `still` says (of two sweeps, one fails it; a job that moved on
    meanwhile is left alone), and remove its upload, as when a job fails while it runs."""
    failed = Job.objects.filter(pk=job.pk, **still).update(
        status=JobStatus.FAILED, finished_at=timezone.now(), message=message, error_code=code
    )
    if failed:
        log.warning("job %s failed by the recovery sweep: %s", job.pk, message)
        _remove_upload_quietly(job)
    return bool(failed)


def _remove_upload_quietly(job: Job) -> None:
    """A sweep goes on past a file it cannot remove (a disk error, a stored path outside MEDIA_ROOT)."""
    try:
        remove_upload(job.upload)
    except (OSError, ServiceError) as exc:
        log.warning("job %s: its upload %r was not removed: %s", job.pk, job.upload, exc)
