"""The audit log in the Django admin: read and filter, never add, change or delete."""

import pytest
from django.urls import reverse

from audit.models import Action, AuditEvent
from audit.services import audit_record
from tests.factories import BatchFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client):
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def event(batch_admin):
    return audit_record(
        actor=batch_admin,
        action=Action.BATCH_PAUSED,
        target=BatchFactory(name="week 12"),
        details={"from": "active"},
    )


def test_the_list_shows_events_and_filters_by_action_actor_and_date(client, root, event, batch_admin):
    audit_record(actor=None, action=Action.RUN_FAILED, target=BatchFactory(name="other"))
    url = reverse("admin:audit_auditevent_changelist")
    page = client.get(url).content.decode()
    assert "week 12" in page and "other" in page and "system" in page
    assert "By action" in page and "By actor" in page and "By created at" in page
    page = client.get(url, {"action__exact": Action.BATCH_PAUSED}).content.decode()
    assert "week 12" in page and "other" not in page
    page = client.get(url, {"actor__id__exact": batch_admin.pk}).content.decode()
    assert "week 12" in page and "other" not in page
    assert 'name="action"' not in page  # no bulk actions: "delete selected" is gone


def test_an_event_can_be_read_but_not_changed(client, root, event):
    url = reverse("admin:audit_auditevent_change", args=[event.pk])
    page = client.get(url).content.decode()
    assert "week 12" in page and "&quot;from&quot;: &quot;active&quot;" in page
    assert 'type="submit"' not in page.split('id="content-main"')[1].split("</form>")[0]  # no save button
    before = (event.action, event.object_repr)
    assert client.post(url, {"action": Action.BATCH_OPENED, "object_repr": "x"}).status_code == 403
    event.refresh_from_db()
    assert (event.action, event.object_repr) == before


def test_events_cannot_be_added_or_deleted(client, root, event):
    assert client.get(reverse("admin:audit_auditevent_add")).status_code == 403
    assert (
        client.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"}).status_code
        == 403
    )
    assert AuditEvent.objects.filter(pk=event.pk).exists()


def test_staff_without_the_permission_do_not_see_it(client, event):
    client.force_login(UserFactory(username="helper", is_staff=True))
    assert client.get(reverse("admin:audit_auditevent_changelist")).status_code == 403
