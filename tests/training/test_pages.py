"""The training pages: who may see them, live status, lineage, and a whole round from the web page."""

import pytest
from django.urls import reverse

from training.models import ModelVersion, Round, RoundStatus, TrainingRun
from training.services.registry import base_model_get_or_create

from .conftest import wait_for

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("who, status", [("labeler", 403), ("batch_admin", 200), ("researcher", 200)])
def test_the_training_overview_is_for_researchers_and_admins(client, request, who, status, media):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("training:overview")).status_code == status


def test_anonymous_users_are_sent_to_login(client):
    response = client.get(reverse("training:overview"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_only_researchers_start_or_cancel(client, batch_admin, media):
    client.force_login(batch_admin)
    run = TrainingRun.objects.create(kind="sft", base_model=base_model_get_or_create())
    assert client.post(reverse("training:run_cancel", args=[run.pk])).status_code == 403
    assert client.post(reverse("training:round_start"), {"method": "ppo", "k": 4}).status_code == 403
    assert client.get(reverse("training:run_new")).status_code == 403
    assert client.post(reverse("api:round-list"), {}, content_type="application/json").status_code == 403


def test_run_page_shows_status_and_escapes_the_log(client, researcher, media):
    client.force_login(researcher)
    run = TrainingRun.objects.create(
        kind="sft",
        base_model=base_model_get_or_create(),
        status="running",
        progress_step=3,
        progress_total=10,
        log_tail="<script>alert(1)</script>",
        metrics_history=[{"step": 1, "loss": 2.5}],
    )
    page = client.get(reverse("training:run", args=[run.pk])).content.decode()
    assert "3 / 10" in page and "<script>alert(1)</script>" not in page
    status = client.get(reverse("training:run_status", args=[run.pk])).json()
    assert status["status"] == "running" and status["history"] == [{"step": 1, "loss": 2.5}]


def test_model_page_shows_the_lineage_back_to_the_base(client, researcher, media):
    base = base_model_get_or_create()
    sft = ModelVersion.objects.create(name="sft-x", kind="sft", parent=base, checkpoint="/tmp/sft")
    ppo = ModelVersion.objects.create(name="ppo-x", kind="ppo", parent=sft, checkpoint="/tmp/ppo")
    client.force_login(researcher)
    page = client.get(reverse("training:model", args=[ppo.pk])).content.decode()
    chain = page[page.index('<ol class="lineage">') :]
    assert chain.index(">ppo-x<") < chain.index(">sft-x<") < chain.index(f">{base.name}<")


def test_starting_a_round_with_the_queue_down_says_so_and_stores_nothing(client, researcher, media, settings):
    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    client.force_login(researcher)
    response = client.post(
        reverse("training:round_start"),
        {"method": "ppo", "k": 4, "prompt_limit": 5, "batch_status": "active"},
        follow=True,
    )
    assert "queue is unreachable" in response.content.decode()
    assert Round.objects.count() == 0
    api = client.post(reverse("api:round-list"), {"method": "ppo"}, content_type="application/json")
    assert api.status_code == 503 and "queue is unreachable" in api.json()["detail"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_whole_round_from_the_web_page_without_a_broker(client, researcher, media, demo_data, settings):
    """The local demo's path: no Redis, tasks in a background thread of the web process."""
    settings.CELERY_BROKER_URL = ""
    settings.TASKS_INLINE = False
    client.force_login(researcher)
    Round.objects.all().delete()
    response = client.post(
        reverse("training:round_start"),
        {"method": "dpo", "k": 2, "prompt_limit": 2, "batch_status": "active"},
    )
    assert response.status_code == 302
    rnd = Round.objects.get()  # DPO with the default stage settings: small on the demo data
    wait_for(lambda: Round.objects.get(pk=rnd.pk).status != RoundStatus.RUNNING, what="the round to end")
    rnd.refresh_from_db()
    assert rnd.status == RoundStatus.SUCCEEDED, rnd.error
    assert rnd.batch.tasks.count() == 2
    page = client.get(reverse("training:round", args=[rnd.pk])).content.decode()
    assert rnd.batch.name in page


def test_with_redis_down_labelers_still_get_tasks_and_submit(client, labeler, settings):
    """Labeling never touches the broker: with the queue unreachable, the workspace API still works."""
    from labeling.models import Batch, Ranking
    from tests.factories import BatchFactory, ranking_task

    settings.CELERY_BROKER_URL = "redis://127.0.0.1:1/0"
    batch = BatchFactory(overlap=1)
    batch.labelers.add(labeler)
    task = ranking_task(batch=batch, k=3)
    client.force_login(labeler)
    given = client.post(f"/api/v1/tasks/next/{batch.pk}/")
    assert given.status_code == 200, given.content
    assignment = given.json()
    ids = [c["id"] for c in assignment["completions"]]
    submitted = client.post(
        f"/api/v1/assignments/{assignment['id']}/submit/",
        {
            "tiers": [[ids[0]], [ids[1], ids[2]]],
            "ratings": {i: {"likert": 4} for i in ids},
            "seconds_spent": 12,
        },
        content_type="application/json",
    )
    assert submitted.status_code in (200, 201), submitted.content
    ranking = Ranking.objects.get(task=task)
    assert ranking.labeler == labeler and ranking.comparisons.count() == 2
    assert Batch.objects.get(pk=batch.pk).status == Batch.Status.ACTIVE
