"""Redis down: every training action, on its page and over the API, answers that the queue is unavailable
and stores nothing. Starting a round (page and API) and labeling (next task, submit) with Redis down are
in tests/training/test_pages.py; here, starting and retrying a run."""

import pytest
from django.urls import reverse

from labeling.services.exports import snapshot_create
from training.models import ModelVersion, RunStatus, TrainingRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def redis_down(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"  # nothing listens there


@pytest.fixture
def inputs(redis_down) -> dict:
    return {
        "base_model": ModelVersion.objects.create(name="base", kind="base", checkpoint="/models/base"),
        "snapshot": snapshot_create(kind="sft", filters={}),
    }


def test_starting_a_run_says_the_queue_is_unavailable_on_the_page_and_over_the_api(
    client, researcher, inputs
):
    client.force_login(researcher)
    page = client.post(
        reverse("training:run_new"),
        {"kind": "sft", "base_model": inputs["base_model"].pk, "snapshots": [inputs["snapshot"].pk]},
    )
    assert page.status_code == 200 and "queue is unreachable" in page.content.decode()

    api = client.post(
        reverse("api:training-run-list"),
        {"kind": "sft", "base_model": inputs["base_model"].pk, "snapshots": [inputs["snapshot"].pk]},
        content_type="application/json",
    )
    assert api.status_code == 503
    assert api.json()["code"] == "queue_unavailable" and "queue is unreachable" in api.json()["detail"]
    assert TrainingRun.objects.count() == 0


def test_retrying_a_run_says_the_queue_is_unavailable(client, researcher, inputs):
    failed = TrainingRun.objects.create(kind="sft", base_model=inputs["base_model"], status=RunStatus.FAILED)
    failed.snapshots.set([inputs["snapshot"]])
    client.force_login(researcher)
    page = client.post(reverse("training:run_retry", args=[failed.pk]), follow=True)
    assert "queue is unreachable" in page.content.decode()
    assert list(TrainingRun.objects.values_list("pk", flat=True)) == [failed.pk]
