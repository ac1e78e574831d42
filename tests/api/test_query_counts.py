"""Queries per API call stay the same however many rows a call shows: no N+1 on the labeling hot path
(next task, submit) or on the lists. Each test runs with few and with many rows under one bound; the
bounds are today's counts (savepoints of the test's transaction included), so a new query shows here.
Every call authenticates with a token, as scripts do, so the user and their roles are loaded each time
(in one query: labeling.api.auth)."""

import pytest
from knox.models import AuthToken
from rest_framework.test import APIClient

from core.roles import ROLE_BATCH_ADMIN, ROLE_LABELER
from labeling.models import Assignment
from labeling.services.rankings import ranking_submit
from tests.api.world import completion_ids
from tests.factories import (
    BatchFactory,
    CompletionFactory,
    PromptFactory,
    UserFactory,
    assignment_for,
    ranking_task,
    scored,
)

pytestmark = pytest.mark.django_db

FEW, MANY = 3, 20


def client_for(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {AuthToken.objects.create(user=user)[1]}")
    return client


@pytest.fixture
def labeler():
    return UserFactory(username="counted", roles=[ROLE_LABELER])


@pytest.fixture
def admin():
    return UserFactory(username="counting-admin", roles=[ROLE_BATCH_ADMIN])


def labeled_batch(labeler, *, finished: int, k: int = 4):
    """A batch (overlap 1) whose first `finished` tasks others submitted, then one open task."""
    batch = BatchFactory(overlap=1)
    batch.labelers.add(labeler)
    for i in range(finished):
        task = ranking_task(batch, k=k)
        other = UserFactory(username=f"other{i}", roles=[ROLE_LABELER])
        ranking_submit(
            assignment=assignment_for(task, other),
            tiers=[completion_ids(task)],
            ratings=scored([completion_ids(task)]),
        )
    ranking_task(batch, k=k)
    return batch


@pytest.mark.parametrize("finished", [FEW, MANY])
def test_next_task(labeler, django_assert_max_num_queries, finished):
    batch = labeled_batch(labeler, finished=finished, k=9)
    client = client_for(labeler)
    with django_assert_max_num_queries(8):
        response = client.post(f"/api/v1/tasks/next/{batch.pk}/")
    assert response.status_code == 200 and len(response.data["completions"]) == 9
    with django_assert_max_num_queries(8):  # asked again: the live assignment
        again = client.post(f"/api/v1/tasks/next/{batch.pk}/")
    assert again.data["id"] == response.data["id"] and len(again.data["completions"]) == 9


@pytest.mark.parametrize("k", [3, 9])
def test_submit_a_ranking(labeler, django_assert_max_num_queries, k):
    batch = labeled_batch(labeler, finished=0, k=k)
    client = client_for(labeler)
    assignment = client.post(f"/api/v1/tasks/next/{batch.pk}/").data
    ids = [c["id"] for c in assignment["completions"]]
    body = {"tiers": [[cid] for cid in ids], "ratings": {str(cid): {"likert": 4} for cid in ids}}
    with django_assert_max_num_queries(9):
        response = client.post(f"/api/v1/assignments/{assignment['id']}/submit/", body, format="json")
    assert response.status_code == 201
    assert Assignment.objects.get(pk=assignment["id"]).ranking.comparisons.count() == k * (k - 1) // 2


@pytest.mark.parametrize("k", [3, 9])
def test_read_an_assignment(labeler, django_assert_max_num_queries, k):
    batch = labeled_batch(labeler, finished=0, k=k)
    client = client_for(labeler)
    pk = client.post(f"/api/v1/tasks/next/{batch.pk}/").data["id"]
    with django_assert_max_num_queries(4):
        response = client.get(f"/api/v1/assignments/{pk}/")
    assert response.status_code == 200 and len(response.data["completions"]) == k


@pytest.mark.parametrize("rows", [FEW, MANY])
@pytest.mark.parametrize("as_admin", [False, True], ids=["labeler", "admin"])
def test_list_tasks(labeler, admin, django_assert_max_num_queries, rows, as_admin):
    batch = BatchFactory()
    batch.labelers.add(labeler)
    for _ in range(rows):
        ranking_task(batch, k=4)
    client = client_for(admin if as_admin else labeler)
    with django_assert_max_num_queries(3):
        response = client.get("/api/v1/tasks/")
    assert len(response.data["results"]) == rows
    assert all(len(task["completions"]) == 4 for task in response.data["results"])


@pytest.mark.parametrize("rows", [FEW, MANY])
@pytest.mark.parametrize("as_admin", [False, True], ids=["labeler", "admin"])
def test_list_rankings(labeler, admin, django_assert_max_num_queries, rows, as_admin):
    batch = BatchFactory()
    for _ in range(rows):
        task = ranking_task(batch, k=4)
        ranking_submit(
            assignment=assignment_for(task, labeler),
            tiers=[completion_ids(task)],
            ratings=scored([completion_ids(task)]),
        )
    client = client_for(admin if as_admin else labeler)
    with django_assert_max_num_queries(3):
        response = client.get("/api/v1/rankings/")
    assert len(response.data["results"]) == rows
    assert all(len(ranking["ratings"]) == 4 for ranking in response.data["results"])


@pytest.mark.parametrize("rows", [FEW, MANY])
def test_list_prompts(admin, django_assert_max_num_queries, rows):
    for i in range(rows):
        PromptFactory(author=UserFactory(username=f"author{i}"))
    client = client_for(admin)
    with django_assert_max_num_queries(2):
        response = client.get("/api/v1/prompts/")
    assert len(response.data["results"]) == rows and all(p["author"] for p in response.data["results"])


@pytest.mark.parametrize("rows", [FEW, MANY])
def test_list_completions(admin, django_assert_max_num_queries, rows):
    for _ in range(rows):
        CompletionFactory()
    client = client_for(admin)
    with django_assert_max_num_queries(2):
        response = client.get("/api/v1/completions/")
    assert len(response.data["results"]) == rows


@pytest.mark.parametrize("rows", [FEW, MANY])
@pytest.mark.parametrize("as_admin", [False, True], ids=["labeler", "admin"])
def test_list_batches(labeler, admin, django_assert_max_num_queries, rows, as_admin):
    for i in range(rows):
        batch = BatchFactory(created_by=admin)
        batch.labelers.add(labeler, UserFactory(username=f"colleague{i}", roles=[ROLE_LABELER]))
        ranking_task(batch, k=2)
    client = client_for(admin if as_admin else labeler)
    with django_assert_max_num_queries(4 if as_admin else 2):  # a labeler is not shown who else works on it
        response = client.get("/api/v1/batches/")
    assert len(response.data["results"]) == rows
    if as_admin:
        assert all(len(b["labelers"]) == 2 and b["task_count"] == 1 for b in response.data["results"])
