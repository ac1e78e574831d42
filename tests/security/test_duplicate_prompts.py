"""The duplicate-prompt check as an oracle: labeler A types the opening of labeler B's written prompt.
A learns that a similar prompt exists, never which one (its id) or how it goes on (its text), on the
page or over the API. Before, the page linked to B's prompt and that link opened it whole."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

from labeling.handout.next import assignment_next
from labeling.models import Assignment, Batch, Prompt

pytestmark = pytest.mark.django_db


def a_writing_task(world) -> Assignment:
    writing = world.a.objects["batch"][1]
    assert writing.kind == Batch.Kind.PROMPT_WRITING
    return assignment_next(labeler=world.a.user, batch=writing)


def b_written(world) -> Prompt:
    return world.b.objects["prompt"][0]


def test_the_writing_page_says_a_similar_prompt_exists_and_names_none(world):
    client = Client()
    client.force_login(world.a.user)
    assignment, written = a_writing_task(world), b_written(world)
    response = client.post(
        f"/assignments/{assignment.pk}/",
        {"text": written.text.upper(), "category": "brainstorming", "source": "plain"},
        follow=True,  # a refused page submit redirects back to the task, which shows the error once
    )
    html = response.content.decode()
    assert [status for _, status in response.redirect_chain] == [303]
    assert "A similar prompt already exists" in html
    assert f"/prompts/{written.pk}/" not in html and f"prompt {written.pk}" not in html
    assert written.text not in html  # only what A typed comes back (upper case), not B's prompt
    assert client.get(f"/prompts/{written.pk}/").status_code == 404  # no door opened by the refusal
    assert Prompt.objects.filter(author=world.a.user).count() == 1  # A's own, from the world


def test_the_api_says_a_similar_prompt_exists_and_names_none(world):
    client = APIClient()
    client.force_authenticate(world.a.user)
    assignment, written = a_writing_task(world), b_written(world)
    response = client.post(
        f"/api/v1/assignments/{assignment.pk}/submit/",
        {"text": written.text, "category": "brainstorming"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json() == {
        "detail": "a similar prompt already exists (same opening text); write a different one.",
        "field": "text",
        "code": "duplicate",
    }
