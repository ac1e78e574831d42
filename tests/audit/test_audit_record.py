"""audit_record and the event itself: what an event holds, and that nothing changes or deletes one."""

import pytest
from django.contrib.auth.models import AnonymousUser
from django.db import IntegrityError, InternalError, connection, transaction

from audit.models import Action, AuditEvent, ImmutableEvent
from audit.services import audit_record
from tests.factories import BatchFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_an_event_names_the_actor_and_the_target():
    boss, batch = UserFactory(username="boss"), BatchFactory(name="week 12")
    event = audit_record(actor=boss, action=Action.BATCH_PAUSED, target=batch, details={"from": "active"})
    event.refresh_from_db()
    assert (event.actor, event.actor_name, event.action) == (boss, "boss", "batch.paused")
    assert (event.object_type, event.object_id, event.object_repr) == (
        "labeling.batch",
        str(batch.pk),
        str(batch),
    )
    assert event.details == {"from": "active"} and event.created_at is not None


def test_the_system_and_anonymous_users_are_recorded_as_no_actor():
    batch = BatchFactory()
    for actor in (None, AnonymousUser()):
        event = audit_record(actor=actor, action=Action.BATCH_CLOSED, target=batch)
        assert event.actor is None and event.actor_name == ""
    assert str(event).split()[2] == "system"


def test_an_unknown_action_is_refused():
    with pytest.raises(ValueError, match="unknown audit action 'batch.renamed'"):
        audit_record(actor=None, action="batch.renamed", target=BatchFactory())
    assert AuditEvent.objects.count() == 0


def test_the_model_refuses_changes_and_deletes():
    event = audit_record(actor=None, action=Action.BATCH_CLOSED, target=BatchFactory())
    event.action = Action.BATCH_OPENED
    with pytest.raises(ImmutableEvent):
        event.save()
    with pytest.raises(ImmutableEvent):
        event.delete()
    with pytest.raises(ImmutableEvent):
        AuditEvent.objects.filter(pk=event.pk).update(action=Action.BATCH_OPENED)
    with pytest.raises(ImmutableEvent):
        AuditEvent.objects.all().delete()
    event.refresh_from_db()
    assert event.action == Action.BATCH_CLOSED


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the delete trigger is Postgres's")
def test_the_database_refuses_changes_and_deletes_too():
    event = audit_record(actor=UserFactory(), action=Action.BATCH_CLOSED, target=BatchFactory())
    for sql in (
        "UPDATE audit_auditevent SET action = 'batch.opened' WHERE id = %s",
        "UPDATE audit_auditevent SET actor_id = NULL, object_repr = 'x' WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ):
        with pytest.raises((IntegrityError, InternalError), match="never changed or deleted"):
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk, action=Action.BATCH_CLOSED).exists()


def test_deleting_a_user_keeps_their_events_under_their_name():
    gone = UserFactory(username="gone")
    event = audit_record(actor=gone, action=Action.BATCH_CLOSED, target=BatchFactory())
    gone.delete()
    event.refresh_from_db()
    assert event.actor is None and event.actor_name == "gone" and event.action == Action.BATCH_CLOSED
