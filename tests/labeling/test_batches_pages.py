"""The batch pages: who may open them, creating a batch, running it, and what the page shows."""

import pytest
from django.urls import reverse

from labeling.models import Batch
from labeling.services.batches import batch_create_from_prompts
from tests.factories import PromptFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def batch(labeler):
    return batch_create_from_prompts(
        name="<b>Night</b> shift",
        kind="prompt_writing",
        task_count=3,
        labelers=[labeler],
        instructions="Use <script>alert(1)</script> wisely.",
    )


@pytest.mark.parametrize(
    "who, status", [(None, 302), ("labeler", 403), ("batch_admin", 200), ("researcher", 200)]
)
def test_who_may_see_the_batch_pages(client, request, batch, who, status):
    if who:
        client.force_login(request.getfixturevalue(who))
    for url in (reverse("manage:batches"), reverse("manage:batch", args=[batch.pk])):
        assert client.get(url).status_code == status


@pytest.mark.parametrize("who, status", [("labeler", 403), ("researcher", 403)])
def test_only_batch_admins_create_and_run_batches(client, request, batch, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("manage:batch_new")).status_code == status
    assert (
        client.post(reverse("manage:batch_action", args=[batch.pk]), {"action": "close"}).status_code
        == status
    )
    assert Batch.objects.get(pk=batch.pk).status == "active"


def test_model_text_is_escaped(client, researcher, batch):
    client.force_login(researcher)
    html = client.get(reverse("manage:batch", args=[batch.pk])).content.decode()
    assert "&lt;b&gt;Night&lt;/b&gt;" in html and "<script>alert" not in html
    assert "<script>" not in html.replace('<script src="/static/js/manage_confirm.js" defer></script>', "")


def test_create_a_demonstration_batch_from_the_form(client, batch_admin, labeler):
    PromptFactory(category="chat")
    PromptFactory(category="extract")
    client.force_login(batch_admin)
    response = client.post(
        reverse("manage:batch_new"),
        {
            "name": "chat demos",
            "kind": "demonstration",
            "status": "active",
            "overlap": 2,
            "lease_minutes": 20,
            "instructions": "",
            "labelers": [labeler.pk],
            "category": ["chat"],
        },
    )
    batch = Batch.objects.get(name="chat demos")
    assert response.status_code == 302 and response["Location"] == reverse("manage:batch", args=[batch.pk])
    assert batch.tasks.count() == 1 and batch.overlap == 2 and list(batch.labelers.all()) == [labeler]


def test_an_empty_selection_shows_the_error_on_the_form(client, batch_admin):
    client.force_login(batch_admin)
    response = client.post(
        reverse("manage:batch_new"),
        {
            "name": "nothing",
            "kind": "demonstration",
            "status": "active",
            "overlap": 1,
            "lease_minutes": 30,
            "category": ["extract"],
        },
    )
    assert response.status_code == 200 and "the batch would be empty" in response.content.decode()
    assert not Batch.objects.filter(name="nothing").exists()


def test_pause_resume_close_and_labelers_from_the_page(client, batch_admin, batch, labeler, other_labeler):
    client.force_login(batch_admin)
    action = reverse("manage:batch_action", args=[batch.pk])
    client.post(action, {"action": "pause"})
    assert Batch.objects.get(pk=batch.pk).status == "paused"
    page = client.get(reverse("manage:batch", args=[batch.pk])).content.decode()
    assert 'value="resume"' in page and 'value="pause"' not in page
    client.post(
        reverse("manage:batch_labelers", args=[batch.pk]), {"op": "add", "add-users": [other_labeler.pk]}
    )
    assert set(batch.labelers.all()) == {labeler, other_labeler}
    client.post(
        reverse("manage:batch_labelers", args=[batch.pk]), {"op": "remove", "remove-users": [labeler.pk]}
    )
    assert list(batch.labelers.all()) == [other_labeler]
    client.post(action, {"action": "close"})
    assert Batch.objects.get(pk=batch.pk).status == "closed"


def test_settings_are_saved(client, batch_admin, batch):
    client.force_login(batch_admin)
    client.post(
        reverse("manage:batch_settings", args=[batch.pk]),
        {
            "settings-name": "Renamed",
            "settings-overlap": 4,
            "settings-lease_minutes": 45,
            "settings-instructions": "New",
        },
    )
    batch.refresh_from_db()
    assert (batch.name, batch.overlap, batch.lease_minutes, batch.instructions) == ("Renamed", 4, 45, "New")
