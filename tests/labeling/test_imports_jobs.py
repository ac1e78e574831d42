"""Import and export jobs: all or nothing, progress others can see mid-transaction, the demo's thread, an
unreachable queue, a message delivered twice."""

import io
import threading

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection, transaction
from rest_framework.test import APIClient

from core.dispatch import QueueUnavailable
from labeling.models import Batch, Completion, Job, Prompt
from labeling.services.jobs import JobProgress, job_run, job_start_completion_import, job_start_prompt_import
from tests.factories import PromptFactory
from tests.training.conftest import wait_for


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


@pytest.fixture
def inline_jobs(settings):
    settings.CELERY_BROKER_URL = ""
    settings.TASKS_INLINE = True


def uploads(media) -> list:
    return list((media / "uploads").iterdir()) if (media / "uploads").exists() else []


def completions_file() -> SimpleUploadedFile:
    lines = b'{"prompt": "A new prompt", "completions": ["one", "two"], "model": "m"}\n' * 2
    return SimpleUploadedFile(
        "c.jsonl", lines + b'{"prompt": "Another", "completions": ["a", "b"], "model": "m"}\n'
    )


@pytest.mark.django_db
def test_an_import_that_fails_while_writing_stores_nothing(inline_jobs, batch_admin, media):
    """The prompts of the file are written before the batch is refused (overlap 0): all rolled back."""
    job = job_start_completion_import(
        upload=completions_file(), batch={"name": "bad overlap", "overlap": 0}, created_by=batch_admin
    )
    assert job.status == "failed" and job.error_code == "invalid" and "overlap" in job.message
    assert Prompt.objects.count() == Completion.objects.count() == Batch.objects.count() == 0
    assert uploads(media) == []


@pytest.mark.django_db
def test_a_message_delivered_again_after_the_job_ended_does_nothing(inline_jobs, batch_admin):
    job = job_start_completion_import(upload=completions_file(), batch={"name": "b"}, created_by=batch_admin)
    assert job.status == "succeeded" and job.result["tasks_created"] == 2
    assert job_run(job_id=job.pk) is None and Batch.objects.get().tasks.count() == 2


@pytest.mark.django_db
def test_a_job_whose_worker_died_runs_again_from_the_start(settings, batch_admin):
    """Sent on commit, which a test's transaction never reaches: the job stays queued, as if its worker
    had died holding it; the message coming back runs it."""
    settings.CELERY_BROKER_URL, settings.TASKS_INLINE = "", False
    job = job_start_prompt_import(upload=SimpleUploadedFile("p.csv", b"text,category\nHi,chat\n"))
    Job.objects.filter(pk=job.pk).update(status="running", message="checked 1 lines")
    assert job_run(job_id=job.pk, worker_task_id="again").status == "succeeded"
    assert Prompt.objects.get().text == "Hi" and Job.objects.get().worker_task_id == "again"


@pytest.mark.django_db
def test_an_unreachable_queue_starts_nothing(settings, batch_admin, media):
    settings.CELERY_BROKER_URL, settings.TASKS_INLINE = "redis://127.0.0.1:1/0", False  # nobody listens
    with pytest.raises(QueueUnavailable):
        job_start_prompt_import(upload=SimpleUploadedFile("p.csv", b"text,category\nHi,chat\n"))
    api = APIClient()
    api.force_authenticate(batch_admin)
    response = api.post(
        "/api/v1/imports/prompts/",
        {"file": SimpleUploadedFile("p.csv", b"text,category\nHi,chat\n")},
        format="multipart",
    )
    assert response.status_code == 503 and response.data["code"] == "queue_unavailable"
    assert not Job.objects.exists() and uploads(media) == []


def _seen_elsewhere(job_id: int) -> tuple[int, int, str]:
    """The job's progress as another connection reads it."""
    seen = []

    def read() -> None:
        try:
            seen.append(Job.objects.values_list("progress_done", "progress_total", "message").get(pk=job_id))
        finally:
            connection.close()

    reader = threading.Thread(target=read)
    reader.start()
    reader.join()
    return seen[0]


@pytest.mark.django_db(transaction=True)
def test_progress_is_seen_by_others_while_the_job_holds_its_transaction(settings):
    settings.JOB_PROGRESS_SECONDS = 0
    job = Job.objects.create(kind="prompt_import", status="running")
    progress = JobProgress(job.pk)
    progress(10, 100, "checked 10 lines")
    assert _seen_elsewhere(job.pk) == (10, 100, "checked 10 lines")
    with transaction.atomic():  # as an import writes its rows
        PromptFactory(text="not committed yet")
        progress(40, 100, "stored 40 of 100 lines")
        assert _seen_elsewhere(job.pk) == (40, 100, "stored 40 of 100 lines")
    settings.JOB_PROGRESS_SECONDS = 3600
    throttled = JobProgress(job.pk)
    throttled(50, 100, "written")
    throttled(60, 100, "too soon")  # at most every JOB_PROGRESS_SECONDS
    assert _seen_elsewhere(job.pk) == (50, 100, "written")


@pytest.mark.django_db(transaction=True)
def test_in_the_demo_a_job_runs_in_a_thread_once_committed(settings, batch_admin):
    """No broker: the request answers at once and a background thread of the web process runs the job."""
    settings.CELERY_BROKER_URL, settings.TASKS_INLINE = "", False
    api = APIClient()
    api.force_authenticate(batch_admin)
    data = io.BytesIO(b"text,category\n" + b"".join(f"Prompt {i},chat\n".encode() for i in range(50)))
    accepted = api.post(
        "/api/v1/imports/prompts/", {"file": SimpleUploadedFile("p.csv", data.getvalue())}, format="multipart"
    )
    assert accepted.status_code == 202
    job = wait_for(
        lambda: api.get(accepted.data["url"]).data if not Job.objects.get().live else None,
        what="the job's thread",
        limit=60,
        every=0.1,
    )
    assert job["status"] == "succeeded" and job["result"]["created"] == 50 and Prompt.objects.count() == 50
    for thread in threading.enumerate():
        if thread.name == "inprocess-labeling.tasks.run_job":
            thread.join()  # it closes its connection as it ends
