"""Undo over the API: a submit inside the window answers 'pending' with its end; POST .../undo/ takes it
back (the draft holds what was sent); after the window, or for someone else's assignment, it is refused."""

from datetime import timedelta

import pytest
from django.utils import timezone

from labeling.models import Assignment, Ranking
from tests.api.world import completion_ids

pytestmark = pytest.mark.django_db


def submit(client, world):
    a, b, c, d = completion_ids(world["t2"])
    body = {
        "tiers": [[a], [b, c], [d]],
        "ratings": {
            a: {"likert": 7},
            b: {"likert": 4},
            c: {"likert": 4, "flags": {"opinion": True}},
            d: {"likert": 1},
        },
        "comment": "d is off topic",
        "seconds_spent": 20,
    }
    return client.post(f"/api/v1/assignments/{world['live'].pk}/submit/", body, format="json"), (a, b, c, d)


def test_submit_in_the_window_is_pending_and_undo_gives_the_draft_back(world, client_as, settings):
    settings.LABELING_UNDO_SECONDS = 30
    client = client_as("labeler")
    response, (a, b, c, d) = submit(client, world)

    assert response.status_code == 201
    assert response.data["status"] == "pending" and response.data["ranking"] is None
    assert response.data["undo_until"] is not None

    undone = client.post(f"/api/v1/assignments/{world['live'].pk}/undo/")

    assert undone.status_code == 200 and undone.data["status"] == "active"
    draft = undone.data["draft"]
    assert draft["tiers"] == [[a], [b, c], [d]] and draft["likert"][str(c)] == "4"
    assert draft["flags"] == {str(c): ["opinion"]} and draft["comment"] == "d is off topic"
    again = client.post(f"/api/v1/assignments/{world['live'].pk}/undo/")
    assert again.status_code == 409 and again.data["code"] == "undo_closed"
    assert "already taken back" in again.data["detail"]


def test_undo_after_the_window_is_a_409_that_says_why(world, client_as, settings):
    settings.LABELING_UNDO_SECONDS = 30
    client = client_as("labeler")
    submit(client, world)
    Assignment.objects.filter(pk=world["live"].pk).update(undo_until=timezone.now() - timedelta(seconds=1))

    response = client.post(f"/api/v1/assignments/{world['live'].pk}/undo/")

    assert response.status_code == 409
    assert response.data == {
        "detail": "the undo window of this submission has closed: it counts as submitted.",
        "field": "assignment",
        "code": "undo_closed",
    }
    assert Assignment.objects.get(pk=world["live"].pk).status == Assignment.Status.PENDING  # for the sweep


def test_undo_of_another_labelers_assignment_is_a_404(world, client_as, settings):
    settings.LABELING_UNDO_SECONDS = 30
    submit(client_as("labeler"), world)
    response = client_as("other_labeler").post(f"/api/v1/assignments/{world['live'].pk}/undo/")
    assert response.status_code == 404
    assert client_as("admin").post(f"/api/v1/assignments/{world['live'].pk}/undo/").status_code == 403
    assert Assignment.objects.get(pk=world["live"].pk).status == Assignment.Status.PENDING


def test_without_a_window_submit_answers_the_ranking_at_once(world, client_as, settings):
    settings.LABELING_UNDO_SECONDS = 0
    response, _ = submit(client_as("labeler"), world)
    assert response.data["status"] == "submitted" and response.data["undo_until"] is None
    assert Ranking.objects.filter(pk=response.data["ranking"]).exists()
    undo = client_as("labeler").post(f"/api/v1/assignments/{world['live'].pk}/undo/")
    assert undo.status_code == 409 and "closed" in undo.data["detail"]
