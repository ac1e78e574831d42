"""Jobs: imports and exports run on a worker of the default queue (a thread in the demo, see
core.dispatch), not inside the web request, and report their progress as they go.

Starting one checks what can be checked at once (the upload's size, the format, the export's filters),
stores the uploaded file under MEDIA_ROOT/uploads/ by a name the server chooses, writes the queued Job
and sends its task once that commits. Running one calls the import or export service, which is all or
nothing, and records the outcome (counts and the batch, or the snapshot) in the same transaction, or the
error with the file's bad lines.

No job waits forever (labeling/services/job_recovery.py jobs_recover, a periodic task every minute): a job
whose message was lost is sent again, or failed once it has waited past its limit while the queue cannot be reached; a job running
without progress for JOB_RUNNING_LIMIT_SECONDS (its worker died, or its outcome could not be written) is
failed. A job's own message delivered again (its worker died: CELERY_TASK_REJECT_ON_WORKER_LOST) runs it
again from the start; any other message finds it taken and does nothing, so a job never runs twice at once.
"""

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO
from uuid import uuid4

from celery import (
    current_app as app,  # the project's Celery app (config/celery.py), without importing the project
)
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import UploadedFile
from django.db import DatabaseError, connection, transaction
from django.db.models import Q, QuerySet
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from core import dispatch
from core.errors import ServiceError
from core.roles import is_batch_admin, is_researcher

from ..media import media_path
from ..models import Job, JobKind, JobStatus
from .exports import snapshot_check, snapshot_create
from .import_files import FORMATS
from .imports import (
    PII_MODES,
    CompletionImportResult,
    ImportRejected,
    PromptImportResult,
    completions_import,
    prompts_import,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)

# The task that runs a job, sent by name: labeling/tasks.py calls this module, so this module does not
# import it (LabelingConfig.ready registers it in every process).
RUN_JOB = "labeling.tasks.run_job"
IMPORT_KINDS = (JobKind.PROMPT_IMPORT, JobKind.COMPLETION_IMPORT)
UPLOADS = "uploads"


# --- who sees which jobs ----------------------------------------------------------------------------


def job_kinds_for(user: "User") -> list[str]:
    """Batch admins run imports, researchers exports: each sees the jobs of their role's kind."""
    return [
        *(IMPORT_KINDS if is_batch_admin(user) else ()),
        *((JobKind.EXPORT,) if is_researcher(user) else ()),
    ]


def jobs_visible_to(user: "User") -> QuerySet[Job]:
    return Job.objects.filter(kind__in=job_kinds_for(user)).select_related("created_by", "batch", "snapshot")


# --- starting ---------------------------------------------------------------------------------------


def _bytes(n: int) -> str:
    return filesizeformat(n).replace("\xa0", " ")


def upload_check_size(upload: UploadedFile) -> None:
    """Refuse a file over IMPORT_MAX_FILE_BYTES before anything reads it (labeling.uploads stops
    storing it as it arrives; this names the problem)."""
    limit = settings.IMPORT_MAX_FILE_BYTES
    size = upload.size or 0  # None only for a file object that cannot tell; Django's uploads always can
    if size > limit:
        raise ServiceError(
            f"the file is {_bytes(size)}, over the limit of {_bytes(limit)} per file "
            "(IMPORT_MAX_FILE_BYTES); split it into smaller files.",
            field="file",
            code="file_too_large",
        )


def _store_upload(upload: UploadedFile) -> str:
    """The upload, copied under MEDIA_ROOT/uploads/ (chunk by chunk) by a name of the server's."""
    stored = f"{UPLOADS}/{uuid4().hex}.upload"
    path = Path(settings.MEDIA_ROOT) / stored
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as out:
            for chunk in upload.chunks():
                out.write(chunk)
    except OSError as exc:
        path.unlink(missing_ok=True)
        log.warning("storing an upload failed: %s", exc)
        raise ServiceError(
            f"Could not store the uploaded file under MEDIA_ROOT/{UPLOADS}/: {exc.strerror or exc}. Nothing "
            "was started; check the free disk space and that MEDIA_ROOT is writable, then try again.",
            code="storage_unavailable",
        ) from exc
    return stored


def remove_upload(stored: str) -> None:
    """Remove a job's stored upload (its work is done, or it failed)."""
    if stored:
        media_path(stored, owner="an upload").unlink(missing_ok=True)


def _start(*, kind: str, params: dict, created_by: "User | None", upload: UploadedFile | None = None) -> Job:
    """Write the queued job and send it once committed; a send the broker refuses undoes it all."""
    dispatch.check_queue()
    stored = _store_upload(upload) if upload is not None else ""
    job = None
    try:
        with transaction.atomic():
            job = Job.objects.create(
                kind=kind,
                params=params,
                upload=stored,
                upload_name=(upload.name or "")[:255] if upload is not None else "",
                created_by=created_by,
                message="waiting for a worker",
                sent_at=timezone.now(),
            )
            dispatch.send(app.tasks[RUN_JOB], job.pk)
    except dispatch.BROKER_ERRORS as exc:
        if job is not None:
            Job.objects.filter(pk=job.pk, status=JobStatus.QUEUED).delete()
        remove_upload(stored)
        raise dispatch.QueueUnavailable(type(exc).__name__) from exc
    except BaseException:
        remove_upload(stored)
        raise
    job.refresh_from_db()  # run inline (tests, commands that wait), it may be done already
    return job


def _batch_params(batch: Mapping | None) -> dict | None:
    """Batch settings as JSON: users and groups by id, the deadline as ISO text."""
    if batch is None:
        return None
    params = dict(batch)
    params["labelers"] = [getattr(u, "pk", u) for u in batch.get("labelers", ())]
    params["groups"] = [getattr(g, "pk", g) for g in batch.get("groups", ())]
    if isinstance(batch.get("deadline"), datetime):
        params["deadline"] = batch["deadline"].isoformat()
    return params


def _check_choice(value: str, allowed: Sequence[str], field: str) -> None:
    if value not in allowed:
        raise ServiceError(f"'{field}' must be one of: {', '.join(allowed)}.", field=field)


def job_start_prompt_import(
    *,
    upload: UploadedFile,
    format: str = "",
    pii: str = "flag",
    batch: Mapping | None = None,
    created_by: "User | None" = None,
) -> Job:
    """A prompts file (JSONL or CSV; format "" means by the file name). With `batch` (the settings of
    batch_create), the prompts it creates become a demonstration batch."""
    upload_check_size(upload)
    format = format or ("csv" if (upload.name or "").lower().endswith(".csv") else "jsonl")
    _check_choice(format, FORMATS, "format")
    _check_choice(pii, PII_MODES, "pii")
    params = {"format": format, "pii": pii, "batch": _batch_params(batch)}
    return _start(kind=JobKind.PROMPT_IMPORT, params=params, created_by=created_by, upload=upload)


def job_start_completion_import(
    *, upload: UploadedFile, batch: Mapping, pii: str = "flag", created_by: "User | None" = None
) -> Job:
    """A completions file (JSONL) that becomes a ranking or evaluation batch (`batch`: its settings)."""
    upload_check_size(upload)
    _check_choice(pii, PII_MODES, "pii")
    params = {"pii": pii, "batch": _batch_params(batch)}
    return _start(kind=JobKind.COMPLETION_IMPORT, params=params, created_by=created_by, upload=upload)


def job_start_export(
    *, kind: str, format: str, filters: Mapping | None, created_by: "User | None" = None
) -> Job:
    """A dataset snapshot; the kind, format and filters are checked now (a bad filter is refused here)."""
    clean = snapshot_check(kind=kind, format=format, filters=dict(filters or {}))
    params = {"kind": kind, "format": format, "filters": clean}
    return _start(kind=JobKind.EXPORT, params=params, created_by=created_by)


# --- progress ---------------------------------------------------------------------------------------


def _write(job_id: int, fields: dict) -> None:
    try:
        Job.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(progress_at=timezone.now(), **fields)
    except DatabaseError as exc:  # progress is worth less than the work: the job goes on
        log.warning("job %s: its progress was not written: %s", job_id, exc)


def _write_on_own_connection(job_id: int, fields: dict) -> None:
    try:
        _write(job_id, fields)
    finally:
        connection.close()  # this thread's, opened for this one write


def _write_progress(job_id: int, **fields: Any) -> None:
    """Update a running job's progress where every page sees it at once. Inside a transaction (an
    import's writes, an export's COPY) that takes another connection: a short-lived thread's, on
    Postgres. SQLite (the demo) has one writer at a time, this transaction: there the progress waits.
    The job's own transaction touches its row only last, to record the outcome, so the other connection
    never waits on it."""
    if not connection.in_atomic_block:
        _write(job_id, fields)
    elif connection.vendor == "postgresql":
        aside = threading.Thread(target=_write_on_own_connection, args=(job_id, fields), name=f"job-{job_id}")
        aside.start()
        aside.join()


class JobProgress:
    """progress(done, total, message), written at most every JOB_PROGRESS_SECONDS."""

    def __init__(self, job_id: int) -> None:
        self.job_id = job_id
        self.due = 0.0

    def __call__(self, done: int, total: int = 0, message: str = "") -> None:
        now = time.monotonic()
        if now < self.due:
            return
        self.due = now + settings.JOB_PROGRESS_SECONDS
        _write_progress(self.job_id, progress_done=done, progress_total=total, message=message)

    def rows(self, rows: int) -> None:
        self(rows, 0, f"{rows:,} rows written")


# --- running ----------------------------------------------------------------------------------------


def _batch_settings(params: Mapping) -> dict:
    settings_ = dict(params)
    settings_["labelers"] = list(get_user_model().objects.filter(pk__in=params.get("labelers", [])))
    settings_["groups"] = list(Group.objects.filter(pk__in=params.get("groups", [])))
    if settings_.get("deadline"):
        settings_["deadline"] = datetime.fromisoformat(settings_["deadline"])
    return settings_


def _prompt_summary(r: PromptImportResult) -> str:
    return (
        f"{r.lines:,} lines: {r.created:,} prompts created, {r.duplicates:,} duplicates and {r.capped:,} "
        f"over the per-user cap skipped, {r.pii_flagged:,} flagged and {r.pii_scrubbed:,} scrubbed for PII."
    )


def _completion_summary(r: CompletionImportResult) -> str:
    return (
        f"{r.lines:,} lines: {r.tasks_created:,} tasks, {r.completions_created:,} completions and "
        f"{r.prompts_created:,} prompts created; {r.already_imported:,} lines were already imported."
    )


def _import_outcome(result: PromptImportResult | CompletionImportResult, summary: str) -> dict:
    counts = {k: v for k, v in vars(result).items() if k != "batch"}
    return {
        "result": counts,
        "batch": result.batch,
        "message": summary,
        "progress_done": result.lines,
        "progress_total": result.lines,
    }


def _open_upload(job: Job) -> BinaryIO:
    try:
        return media_path(job.upload, owner=f"job {job.pk}").open("rb")
    except FileNotFoundError:
        raise ServiceError(
            f"job {job.pk}'s uploaded file is gone from MEDIA_ROOT/{UPLOADS}/; upload it again.",
            field="file",
            code="file_missing",
        ) from None


def _run_prompt_import(job: Job, progress: JobProgress) -> dict:
    p = job.params
    with _open_upload(job) as file:
        result = prompts_import(
            file=file,
            format=p["format"],
            pii=p["pii"],
            created_by=job.created_by,
            demonstration_batch=_batch_settings(p["batch"]) if p.get("batch") is not None else None,
            progress=progress,
        )
    return _import_outcome(result, _prompt_summary(result))


def _run_completion_import(job: Job, progress: JobProgress) -> dict:
    p = job.params
    with _open_upload(job) as file:
        result = completions_import(
            file=file,
            batch=_batch_settings(p["batch"]),
            pii=p["pii"],
            created_by=job.created_by,
            progress=progress,
        )
    return _import_outcome(result, _completion_summary(result))


def _run_export(job: Job, progress: JobProgress) -> dict:
    p = job.params
    snapshot = snapshot_create(
        kind=p["kind"],
        format=p["format"],
        filters=p["filters"],
        created_by=job.created_by,
        progress=progress.rows,
    )
    return {
        "snapshot": snapshot,
        "result": {"row_count": snapshot.row_count, "sha256": snapshot.sha256},
        "message": f"snapshot {snapshot.pk} ({snapshot.format}): {snapshot.row_count:,} rows exported.",
        "progress_done": snapshot.row_count,
        "progress_total": snapshot.row_count,
    }


RUNNERS: dict[str, Callable[[Job, JobProgress], dict]] = {
    JobKind.PROMPT_IMPORT: _run_prompt_import,
    JobKind.COMPLETION_IMPORT: _run_completion_import,
    JobKind.EXPORT: _run_export,
}


def _failure(exc: Exception) -> dict:
    if isinstance(exc, ImportRejected):
        return {
            "message": exc.message,
            "error_code": exc.code,
            "errors": [e.as_dict() for e in exc.errors],
            "error_count": exc.total,
        }
    if isinstance(exc, ServiceError):
        return {"message": exc.message, "error_code": exc.code}
    log.exception("job failed")
    return {
        "message": f"the job failed unexpectedly ({type(exc).__name__}); see the worker's log.",
        "error_code": "error",
    }


class JobTakenOver(Exception):
    """The job is no longer this run's to finish: the sweep failed it, or its message came back."""


def _claim(job_id: int, worker_task_id: str) -> bool:
    """Take a queued job; or a running one under this very message, which Celery delivers again when the
    worker that held it died (CELERY_TASK_REJECT_ON_WORKER_LOST), or under none. (Past
    CELERY_VISIBILITY_TIMEOUT a live run's message comes back too: the new claim wins, and the older run
    cannot record its outcome, so it keeps nothing.) A job running under another message is left alone: a
    message sent again by the sweep while the first was only slow must not run it twice at once."""
    now = timezone.now()
    held_by_this = Q(status=JobStatus.RUNNING, worker_task_id__in={worker_task_id, ""})
    return bool(
        Job.objects.filter(Q(status=JobStatus.QUEUED) | held_by_this, pk=job_id).update(
            status=JobStatus.RUNNING,
            started_at=now,
            progress_at=now,
            worker_task_id=worker_task_id,
            message="started",
        )
    )


def _record(job: Job, outcome: dict) -> bool:
    """Write the outcome if the job is still this run's: running, and claimed at this run's started_at."""
    mine = Job.objects.filter(pk=job.pk, status=JobStatus.RUNNING, started_at=job.started_at)
    return bool(mine.update(finished_at=timezone.now(), **outcome))


def _remove_snapshot_file(outcome: dict) -> None:
    """An export rolled back after its file was in place: the file goes too (no row names it)."""
    snapshot = outcome.get("snapshot")
    if snapshot is None:
        return
    try:
        media_path(snapshot.file, owner=f"snapshot {snapshot.pk}").unlink(missing_ok=True)
    except OSError as exc:
        log.warning("snapshot %s was rolled back; its file %s stays: %s", snapshot.pk, snapshot.file, exc)


def _run_and_record(job: Job) -> bool:
    """Run the job and record its outcome; False when it was no longer this run's to record. Success is
    written in the work's own transaction, so an import is kept only with its job marked succeeded: a job
    the sweep failed meanwhile, or whose outcome cannot be written, keeps nothing."""
    outcome: dict = {}
    try:
        with transaction.atomic():
            outcome = RUNNERS[job.kind](job, JobProgress(job.pk))
            if not _record(job, {"status": JobStatus.SUCCEEDED, **outcome}):
                raise JobTakenOver
    except JobTakenOver:
        _remove_snapshot_file(outcome)
        log.warning("job %s was failed or taken over while it ran; what it did is rolled back", job.pk)
        return False
    except Exception as exc:
        _remove_snapshot_file(outcome)
        return _record(job, {"status": JobStatus.FAILED, **_failure(exc)})
    return True


def job_run(*, job_id: int, worker_task_id: str = "") -> Job | None:
    """Run a queued job (or its own message come back after its worker died); None when it is gone,
    finished, or running under another message."""
    if not _claim(job_id, worker_task_id):
        log.info("job %s is not queued, or runs under another message: skipped", job_id)
        return None
    job = Job.objects.select_related("created_by").get(pk=job_id)
    if _run_and_record(job):
        remove_upload(job.upload)
    job.refresh_from_db()
    return job
