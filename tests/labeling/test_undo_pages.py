"""The undo notice after a submit, the undo form (a plain POST), and a labeler's history of their own
submissions."""

import re
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from core.roles import ROLE_LABELER
from labeling.models import Assignment, Batch, Ranking
from labeling.services.tasks import prompt_task_create
from tests.factories import BatchFactory, PromptFactory, UserFactory, ranking_task

pytestmark = pytest.mark.django_db

Status = Assignment.Status


@pytest.fixture(autouse=True)
def window(settings):
    settings.LABELING_UNDO_SECONDS = 30


@pytest.fixture
def work(labeler):
    """Two ranking tasks of one batch, the labeler signed in and working on the first."""
    batch = BatchFactory(name="Rank these", overlap=1)
    batch.labelers.add(labeler)
    tasks = [ranking_task(batch=batch, k=2) for _ in range(2)]
    return batch, tasks


def rank_post(client, assignment):
    a, b = assignment.display_order
    data = {
        "tiers": f"[[{a}], [{b}]]",
        f"likert-{a}": "6",
        f"likert-{b}": "2",
        f"flag-{b}": ["hallucination"],
    }
    return client.post(f"/assignments/{assignment.pk}/", data | {"seconds_spent": "15", "comment": "A wins"})


def first_assignment(client, batch):
    response = client.post(f"/batches/{batch.pk}/start/")
    return Assignment.objects.get(pk=int(re.search(r"/assignments/(\d+)/", response["Location"]).group(1)))


def test_after_a_submit_the_next_page_offers_undo_and_undo_brings_the_draft_back(client, labeler, work):
    batch, _ = work
    client.force_login(labeler)
    first = first_assignment(client, batch)

    response = rank_post(client, first)
    following = client.get(response["Location"])

    assert following.status_code == 200
    page = following.content.decode()
    assert "Submitted." in page and f'action="/assignments/{first.pk}/undo/"' in page
    assert 'aria-keyshortcuts="U"' in page and "js/workspace/undo.js" in page
    assert Assignment.objects.get(pk=first.pk).status == Status.PENDING

    undone = client.post(f"/assignments/{first.pk}/undo/")
    assert undone.status_code == 302 and undone["Location"] == f"/assignments/{first.pk}/"
    reopened = client.get(undone["Location"])
    assert reopened.status_code == 200
    config = reopened.context["ws_config"]["draft"]
    a, b = first.display_order
    assert config["tiers"] == [[a], [b]] and config["likert"] == {str(a): "6", str(b): "2"}
    assert config["flags"] == {str(b): ["hallucination"]} and config["comment"] == "A wins"


def test_undo_after_the_window_says_why_and_keeps_the_label(client, labeler, work):
    batch, _ = work
    client.force_login(labeler)
    first = first_assignment(client, batch)
    rank_post(client, first)
    Assignment.objects.filter(pk=first.pk).update(undo_until=timezone.now() - timedelta(seconds=1))

    response = client.post(f"/assignments/{first.pk}/undo/", follow=True)

    assert response.redirect_chain[-1][0] == "/submissions/"
    assert "undo window of this submission has closed" in response.content.decode()
    assert Ranking.objects.filter(assignment=first).count() == 1  # the history page wrote it


def test_the_home_page_counts_a_submission_whose_window_closed_before_it_was_shown(client, labeler, work):
    """The view writes the closed windows' labels before it counts (labeling/views/undo.py undo_notice);
    the template only shows: the home page's own counts include them."""
    batch, _ = work
    client.force_login(labeler)
    first = first_assignment(client, batch)
    rank_post(client, first)
    assert client.get("/").context["counts"]["ranking"]["total"] == 0  # pending: still undoable
    Assignment.objects.filter(pk=first.pk).update(undo_until=timezone.now() - timedelta(seconds=1))

    home = client.get("/")

    assert home.context["counts"]["ranking"]["total"] == 1 and home.context["pending_undo"] is None
    assert Ranking.objects.filter(assignment=first).count() == 1
    assert "Submitted." not in home.content.decode()


@pytest.mark.parametrize("broker", ["", "redis://127.0.0.1:1/0"])
def test_without_a_broker_any_page_writes_the_labels_of_closed_windows(
    client, labeler, batch_admin, work, settings, broker
):
    """`make run` has no beat: the web process sweeps (labeling/sweeps.py) before a request, so the batch
    admin's page counts a submission whose labeler went away. With a broker the beat task does it."""
    batch, _ = work
    client.force_login(labeler)
    first = first_assignment(client, batch)
    rank_post(client, first)
    Assignment.objects.filter(pk=first.pk).update(undo_until=timezone.now() - timedelta(seconds=1))
    settings.CELERY_BROKER_URL = broker

    admin = Client()
    admin.force_login(batch_admin)
    assert admin.get(f"/manage/batches/{batch.pk}/").status_code == 200

    written = Ranking.objects.filter(assignment=first).count()
    assert written == (0 if broker else 1)
    assert Assignment.objects.get(pk=first.pk).status == (Status.PENDING if broker else Status.SUBMITTED)


def test_undo_needs_a_post_and_another_labelers_submission_is_a_404(client, labeler, work):
    batch, _ = work
    client.force_login(labeler)
    first = first_assignment(client, batch)
    rank_post(client, first)
    assert client.get(f"/assignments/{first.pk}/undo/").status_code == 405

    other = UserFactory(username="someone", roles=[ROLE_LABELER])
    batch.labelers.add(other)
    client.force_login(other)
    assert client.post(f"/assignments/{first.pk}/undo/").status_code == 404
    assert client.get(f"/submissions/{first.pk}/").status_code == 404
    assert Assignment.objects.get(pk=first.pk).status == Status.PENDING
    assert client.get("/submissions/").context["rows"] == []  # only their own


def test_history_lists_my_submissions_newest_first_and_shows_each(client, labeler):
    ranking_batch = BatchFactory(name="Rank these")
    writing = BatchFactory(name="Write answers", kind=Batch.Kind.DEMONSTRATION)
    for batch in (ranking_batch, writing):
        batch.labelers.add(labeler)
    ranking_task(batch=ranking_batch, k=2)
    prompt_task_create(batch=writing, prompt=PromptFactory(text="What is a prime number?"))
    client.force_login(labeler)
    first = first_assignment(client, ranking_batch)
    rank_post(client, first)
    demo = first_assignment(client, writing)
    client.post(f"/assignments/{demo.pk}/", {"text": "A number with two divisors.", "seconds_spent": "5"})
    Assignment.objects.filter(pk=first.pk).update(undo_until=timezone.now() - timedelta(seconds=1))

    page = client.get("/submissions/").content.decode()
    page = page[page.index('<table id="history"') :]
    assert page.index("Write answers") < page.index("Rank these")  # newest first
    assert "Undo open until" in page and "Counted" in page
    assert page.count('action="/assignments/') == 1  # undo only while the window is open
    shown = client.get(f"/submissions/{demo.pk}/").content.decode()
    assert "A number with two divisors." in shown and "What is a prime number?" in shown
    assert f'action="/assignments/{demo.pk}/undo/"' in shown
    ranked = client.get(f"/submissions/{first.pk}/").content.decode()
    assert "6 of 7" in ranked and "Hallucination" in ranked and "A wins" in ranked
    assert "undo/" not in ranked


def test_history_is_paginated(client, labeler):
    batch = BatchFactory(name="Many")
    batch.labelers.add(labeler)
    now = timezone.now()
    for i in range(30):
        task = ranking_task(batch=batch, k=2)
        Assignment.objects.create(
            task=task,
            batch=batch,
            labeler=labeler,
            status=Status.SUBMITTED,
            lease_expires_at=now,
            finished_at=now - timedelta(minutes=i),
        )
    client.force_login(labeler)
    first, second = client.get("/submissions/"), client.get("/submissions/?page=2")
    assert len(first.context["rows"]) == 25
    assert "page 1 of 2" in first.content.decode() and "page 2 of 2" in second.content.decode()
    assert len(second.context["rows"]) == 5


def test_history_is_for_labelers_only(client, batch_admin):
    client.force_login(batch_admin)
    assert client.get("/submissions/").status_code == 403
