"""Who may open the data explorer: batch admins and researchers read every page; labelers get 403 with the
reason; anonymous users are sent to the login page. Each page, each role."""

import pytest
from django.urls import reverse

from core.roles import ROLE_BATCH_ADMIN, ROLE_LABELER, ROLE_RESEARCHER
from tests.factories import PromptFactory, UserFactory, ranking_task
from tests.labeling.explorer_world import rank

pytestmark = pytest.mark.django_db


@pytest.fixture
def pages():
    task = ranking_task(k=3, prompt=PromptFactory(text="A prompt only readers may explore"))
    rank(task, UserFactory(username="ada", roles=[ROLE_LABELER]), "A>B>C")
    return [
        reverse("explore:rankings"),
        reverse("explore:demonstrations"),
        reverse("explore:prompts"),
        reverse("explore:prompt", kwargs={"pk": task.prompt_id}),
        reverse("explore:task", kwargs={"task_id": task.pk}),
    ]


@pytest.mark.parametrize("role", [ROLE_BATCH_ADMIN, ROLE_RESEARCHER])
def test_batch_admins_and_researchers_open_every_page(client, pages, role):
    client.force_login(UserFactory(username="reader", roles=[role]))
    for url in pages:
        response = client.get(url)
        assert response.status_code == 200, url
    assert b"A prompt only readers may explore" in client.get(pages[0]).content


def test_a_labeler_gets_403_with_the_reason_on_every_page(client, pages):
    client.force_login(UserFactory(username="ada", roles=[ROLE_LABELER]))
    for url in pages:
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"Only batch admins and researchers" in response.content
        assert b"A prompt only readers may explore" not in response.content


def test_a_user_without_a_role_gets_403(client, pages):
    client.force_login(UserFactory(username="nobody"))
    assert all(client.get(url).status_code == 403 for url in pages)


def test_anonymous_users_go_to_the_login_page(client, pages):
    for url in pages:
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url


def test_the_main_navigation_links_the_explorer_for_readers_only(client):
    client.force_login(UserFactory(username="rex", roles=[ROLE_RESEARCHER]))
    assert reverse("explore:rankings").encode() in client.get("/").content
    client.force_login(UserFactory(username="ada", roles=[ROLE_LABELER]))
    assert reverse("explore:rankings").encode() not in client.get("/").content
