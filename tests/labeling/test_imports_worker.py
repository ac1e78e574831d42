"""With a REAL Celery worker process on Redis and Postgres: an import and an export sent by the API run
on the default queue, and the API tells their progress and outcome."""

import hashlib

import pytest
import redis
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from labeling.models import Job, Prompt
from tests.training.conftest import REDIS_URL, WorkerProcess, wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def worker(settings, tmp_path):
    redis.Redis.from_url(REDIS_URL).flushdb()
    settings.MEDIA_ROOT = media = tmp_path / "media"
    media.mkdir()
    settings.CELERY_BROKER_URL, settings.TASKS_INLINE = REDIS_URL, False
    process = WorkerProcess(media, base_model="", stale_seconds=90)
    process.start()
    yield process
    process.stop()
    print(process.tail())


def api_as(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def outcome(client, accepted, worker) -> dict:
    assert accepted.status_code == 202, accepted.data
    return wait_for(
        lambda: (job := client.get(accepted.data["url"]).data)["status"] not in ("queued", "running") and job,
        what=f"job {accepted.data['id']} on the worker\n{worker.tail()}",
        limit=120,
        every=0.2,
    )


def test_an_import_and_an_export_run_on_a_real_worker(worker, batch_admin, researcher, settings):
    admin = api_as(batch_admin)
    data = b"text,category,origin_user\n" + b"".join(f"Prompt {i},chat,u{i}\n".encode() for i in range(30))
    accepted = admin.post(
        "/api/v1/imports/prompts/", {"file": SimpleUploadedFile("p.csv", data)}, format="multipart"
    )
    assert accepted.data["status"] == "queued"  # the web answers before any work is done
    imported = outcome(admin, accepted, worker)
    assert imported["status"] == "succeeded", imported["message"]
    assert imported["result"]["created"] == 30 and Prompt.objects.count() == 30
    assert Job.objects.get(pk=imported["id"]).worker_task_id  # a worker ran it, not this process
    assert list((settings.MEDIA_ROOT / "uploads").iterdir()) == []

    science = api_as(researcher)
    exported = outcome(science, science.post("/api/v1/datasets/", {"kind": "prompts"}, format="json"), worker)
    assert exported["status"] == "succeeded" and exported["progress_done"] == 30
    snapshot = science.get(exported["snapshot_url"]).data
    body = b"".join(science.get(exported["download_url"]).streaming_content)
    assert snapshot["row_count"] == 30 and hashlib.sha256(body).hexdigest() == snapshot["sha256"]
