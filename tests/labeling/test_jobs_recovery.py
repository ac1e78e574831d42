"""No import or export job waits forever: the recovery sweep sends a lost message again (once), fails a job
the queue could not take for too long, and fails a job running without progress, removing its upload and
keeping nothing of its work. Driven through the services; sends go to a real Redis test db that no worker
reads, so what was sent stays there to look at."""

import json
import threading

import pytest
import redis
from django.db import connection
from django.utils import timezone

from labeling.models import Job, Prompt
from labeling.services import jobs
from labeling.services.job_recovery import jobs_recover
from labeling.services.jobs import JobProgress, job_run
from tests.training.conftest import REDIS_URL

DOWN = "redis://127.0.0.1:1/0"  # nothing listens there: the broker is "down"
PROMPTS_CSV = b"text,category\nHello there,chat\nWrite a poem,generation\n"


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def queue(settings):
    """A broker (the Redis test db) that no worker reads: what is sent stays in its lists."""
    client = redis.Redis.from_url(REDIS_URL)
    client.flushdb()
    settings.CELERY_BROKER_URL, settings.TASKS_INLINE = REDIS_URL, False
    return client


def sent_jobs(queue) -> list[str]:
    """The job ids of the run_job messages waiting in the default queue."""
    headers = [json.loads(raw)["headers"] for raw in queue.lrange("default", 0, -1)]
    return [h["argsrepr"] for h in headers if h["task"] == "labeling.tasks.run_job"]


def ago(seconds: float):
    return timezone.now() - timezone.timedelta(seconds=seconds)


def import_job(media, *, status: str, age: float = 0, **fields) -> Job:
    """A prompt import job with its uploaded file stored, created `age` seconds ago."""
    upload = media / "uploads" / f"{status}-{age}.upload"
    upload.parent.mkdir(parents=True, exist_ok=True)
    upload.write_bytes(PROMPTS_CSV)
    job = Job.objects.create(
        kind="prompt_import",
        status=status,
        params={"format": "csv", "pii": "flag", "batch": None},
        upload=upload.relative_to(media).as_posix(),
        **fields,
    )
    Job.objects.filter(pk=job.pk).update(created_at=ago(age))
    return job


def upload_of(media, job: Job):
    return media / job.upload


@pytest.mark.django_db
def test_a_lost_message_is_sent_again_once_even_when_the_sweep_runs_twice(
    media, queue, settings, django_capture_on_commit_callbacks
):
    settings.JOB_RESEND_SECONDS = 600
    lost = import_job(media, status="queued", age=700, sent_at=ago(700))
    recent = import_job(media, status="queued", age=60, sent_at=ago(60))
    with django_capture_on_commit_callbacks(execute=True):  # a send waits for the commit
        assert jobs_recover()["resent"] == [lost.pk]
        assert jobs_recover()["resent"] == []  # sent just now: not again before its time
    assert sent_jobs(queue) == [f"({lost.pk},)"]
    assert Job.objects.get(pk=recent.pk).status == Job.objects.get(pk=lost.pk).status == "queued"


@pytest.mark.django_db(transaction=True)
def test_two_sweeps_at_once_send_a_lost_message_once(media, queue, settings):
    settings.JOB_RESEND_SECONDS = 600
    lost = import_job(media, status="queued", age=700, sent_at=ago(700))
    start, outcomes = threading.Barrier(2), []

    def sweep() -> None:
        try:
            start.wait()
            outcomes.append(jobs_recover()["resent"])
        finally:
            connection.close()

    threads = [threading.Thread(target=sweep) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == [[], [lost.pk]]
    assert sent_jobs(queue) == [f"({lost.pk},)"]


@pytest.mark.django_db
def test_a_message_sent_again_finds_the_job_taken_and_does_nothing(media):
    """The first message was only slow: its worker runs the job; the sweep's copy must not run it too."""
    job = import_job(media, status="running", worker_task_id="first", started_at=ago(5), progress_at=ago(5))
    assert job_run(job_id=job.pk, worker_task_id="sent-again") is None
    job.refresh_from_db()
    assert job.status == "running" and job.worker_task_id == "first"
    assert not Prompt.objects.exists() and upload_of(media, job).exists()


@pytest.mark.django_db
def test_a_job_queued_past_the_limit_while_the_queue_is_down_is_failed(media, settings):
    settings.CELERY_BROKER_URL, settings.TASKS_INLINE = DOWN, False
    settings.JOB_RESEND_SECONDS, settings.JOB_QUEUED_LIMIT_SECONDS = 600, 3600
    old = import_job(media, status="queued", age=7200, sent_at=ago(7200))
    waiting = import_job(media, status="queued", age=1200, sent_at=ago(1200))

    assert jobs_recover() == {"resent": [], "failed": [old.pk], "stalled": []}
    old.refresh_from_db()
    assert old.status == "failed" and old.error_code == "queue_unavailable" and old.finished_at
    assert "JOB_QUEUED_LIMIT_SECONDS" in old.message and "Upload the file again" in old.message
    assert not upload_of(media, old).exists()
    assert Job.objects.get(pk=waiting.pk).status == "queued" and upload_of(media, waiting).exists()


@pytest.mark.django_db
def test_a_job_running_without_progress_past_the_limit_is_failed_and_its_upload_removed(media, settings):
    settings.JOB_RUNNING_LIMIT_SECONDS = 6 * 3600
    stuck = import_job(media, status="running", started_at=ago(7 * 3600), progress_at=ago(7 * 3600))

    assert jobs_recover()["stalled"] == [stuck.pk]
    assert jobs_recover()["stalled"] == []
    stuck.refresh_from_db()
    assert stuck.status == "failed" and stuck.error_code == "stalled" and stuck.finished_at
    assert "JOB_RUNNING_LIMIT_SECONDS" in stuck.message
    assert not upload_of(media, stuck).exists()
    assert job_run(job_id=stuck.pk, worker_task_id="late") is None  # its message coming back does nothing


@pytest.mark.django_db(transaction=True)  # progress is written on its own connection, seen at once
def test_a_running_job_that_shows_progress_is_left_alone(media, settings):
    settings.JOB_RUNNING_LIMIT_SECONDS, settings.JOB_PROGRESS_SECONDS = 6 * 3600, 0
    long_job = import_job(media, status="running", started_at=ago(7 * 3600), progress_at=ago(7 * 3600))
    JobProgress(long_job.pk)(10, 100, "stored 10 of 100 lines")  # a long import, still going

    assert jobs_recover()["stalled"] == []
    long_job.refresh_from_db()
    assert long_job.status == "running" and long_job.message == "stored 10 of 100 lines"
    assert upload_of(media, long_job).exists()


@pytest.mark.django_db(transaction=True)
def test_a_job_failed_by_the_sweep_while_it_still_ran_keeps_nothing(media, settings, monkeypatch):
    """The sweep, on its own connection, fails the job just as its import finishes: the import is rolled
    back with it, not kept under a job that says it failed."""
    settings.JOB_RUNNING_LIMIT_SECONDS = 0  # every running job counts as stalled
    job = import_job(media, status="queued")
    run_import = jobs.RUNNERS["prompt_import"]

    def import_then_sweep(job, progress):
        outcome = run_import(job, progress)
        sweep = threading.Thread(target=lambda: (jobs_recover(), connection.close()))
        sweep.start()
        sweep.join()
        return outcome

    monkeypatch.setitem(jobs.RUNNERS, "prompt_import", import_then_sweep)
    job = job_run(job_id=job.pk, worker_task_id="slow")
    assert job.status == "failed" and job.error_code == "stalled"
    assert not Prompt.objects.exists() and not upload_of(media, job).exists()
