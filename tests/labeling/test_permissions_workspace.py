"""Who may open and submit what in the workspace."""

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from django.urls import reverse

from core.roles import ROLE_LABELER
from labeling.handout.next import assignment_next
from labeling.models import Batch, Ranking
from tests.factories import BatchFactory, ranking_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(labeler, other_labeler):
    batch = BatchFactory(overlap=2)
    batch.labelers.add(labeler, other_labeler)
    ranking_task(batch=batch, k=2)
    return batch


@pytest.fixture
def mine(batch, labeler):
    return assignment_next(labeler=labeler, batch=batch)


def urls(assignment, batch):
    return {
        "page": reverse("workspace-assignment", args=[assignment.pk]),
        "skip": reverse("workspace-skip", args=[assignment.pk]),
        "draft": reverse("workspace-draft", args=[assignment.pk]),
        "start": reverse("workspace-start", args=[batch.pk]),
    }


def test_anonymous_users_are_sent_to_login(client, mine, batch):
    for url in ["/", *urls(mine, batch).values()]:
        for method in (client.get, client.post):
            response = method(url)
            assert response.status_code == 302 and response["Location"].startswith("/accounts/login/"), url


def test_a_labeler_cannot_open_or_submit_another_labelers_assignment(client, other_labeler, mine, batch):
    client.force_login(other_labeler)
    found = urls(mine, batch)
    assert client.get(found["page"]).status_code == 404
    ids = list(mine.task.task_completions.values_list("completion_id", flat=True))
    assert client.post(found["page"], {"tiers": f"[{ids}]", "likert-1": "3"}).status_code == 404
    assert client.post(found["skip"], {"reason": "not mine"}).status_code == 404
    assert client.post(found["draft"], {"draft": {}}, content_type="application/json").status_code == 404
    assert Ranking.objects.count() == 0
    mine.refresh_from_db()
    assert mine.status == "active"


def test_a_labeler_cannot_start_a_batch_they_are_not_on(client, batch):
    outsider = type(batch.labelers.first()).objects.create(username="outsider")
    outsider.groups.add(Group.objects.get(name=ROLE_LABELER))
    client.force_login(outsider)
    assert client.post(reverse("workspace-start", args=[batch.pk])).status_code == 403
    assert client.post(reverse("workspace-start", args=[99999])).status_code == 404


def test_a_labeler_removed_from_a_batch_cannot_go_on_with_its_assignment(client, labeler, mine, batch):
    batch.labelers.remove(labeler)
    client.force_login(labeler)
    assert client.get(urls(mine, batch)["page"]).status_code == 403


def test_labelers_in_one_of_the_batch_groups_may_work(client, batch):
    team = Group.objects.create(name="team")
    batch.groups.add(team)
    member = type(batch.labelers.first()).objects.create(username="member")
    member.groups.add(team, Group.objects.get(name=ROLE_LABELER))
    client.force_login(member)
    assert client.post(reverse("workspace-start", args=[batch.pk])).status_code == 302


def test_researchers_get_no_tasks_unless_they_are_also_labelers(client, researcher, batch):
    batch.labelers.add(researcher)
    client.force_login(researcher)
    assert client.post(reverse("workspace-start", args=[batch.pk])).status_code == 403
    researcher.groups.add(Group.objects.get(name=ROLE_LABELER))
    response = client.post(reverse("workspace-start", args=[batch.pk]))
    assert response.status_code == 302 and "/assignments/" in response["Location"]


def test_posts_need_the_csrf_token(labeler, mine, batch):
    client = Client(enforce_csrf_checks=True)
    client.force_login(labeler)
    found = urls(mine, batch)
    assert client.post(found["draft"], {"draft": {}}, content_type="application/json").status_code == 403
    assert client.post(found["skip"], {"reason": "x"}).status_code == 403
    assert client.post(found["start"]).status_code == 403


def test_closed_batches_do_not_show_on_home(client, labeler, batch):
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.CLOSED)
    client.force_login(labeler)
    assert batch.name not in client.get("/").content.decode()
