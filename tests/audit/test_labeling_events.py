"""Each audited change on the collection side writes exactly one event, with the actor and the target,
in the same transaction as the change: a change that fails records nothing."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from audit.models import Action, AuditEvent
from core.errors import ServiceError
from core.roles import ROLE_LABELER, ROLE_RESEARCHER
from labeling.models import Batch, DatasetSnapshot
from labeling.roles import role_add, role_remove
from labeling.services import exports
from labeling.services.batches import (
    batch_create,
    batch_labelers_add,
    batch_labelers_remove,
    batch_transition,
)
from labeling.services.exports import snapshot_create, snapshot_delete
from tests.factories import BatchFactory, UserFactory
from training.models import ModelKind, ModelVersion

pytestmark = pytest.mark.django_db


def test_an_export_records_who_exported_what(media, researcher, events):
    snapshot = snapshot_create(kind="sft", filters={"split": "train"}, created_by=researcher)
    assert events() == [("sci", Action.SNAPSHOT_CREATED, str(snapshot.pk))]
    event = AuditEvent.objects.get()
    assert event.details == {
        "kind": "sft",
        "format": "standard",
        "filters": {"split": ["train"]},
        "row_count": 0,
        "sha256": snapshot.sha256,
    }


def test_an_export_that_fails_records_nothing(media, researcher, monkeypatch):
    def disk_gone(src, dst):  # the file's last step, after the snapshot row and its event were written
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(exports.os, "replace", disk_gone)
    with pytest.raises(ServiceError):
        snapshot_create(kind="sft", filters={}, created_by=researcher)
    assert DatasetSnapshot.objects.count() == 0 and AuditEvent.objects.count() == 0


def test_deleting_a_snapshot_records_who_deleted_it(media, researcher, events):
    snapshot = snapshot_create(kind="sft", filters={}, created_by=None)
    pk = str(snapshot.pk)
    snapshot_delete(snapshot=snapshot, actor=researcher)
    assert events() == [
        (None, Action.SNAPSHOT_CREATED, pk),
        ("sci", Action.SNAPSHOT_DELETED, pk),
    ]


def test_a_refused_delete_records_nothing(media, researcher, events):
    snapshot = snapshot_create(kind="sft", filters={}, created_by=researcher)
    base = ModelVersion.objects.create(name="base", kind=ModelKind.BASE, checkpoint="/models/base")
    sft = ModelVersion.objects.create(name="sft-1", kind=ModelKind.SFT, parent=base, checkpoint="/models/sft")
    sft.snapshots.set([snapshot])
    with pytest.raises(ServiceError, match="cannot be deleted"):
        snapshot_delete(snapshot=snapshot, actor=researcher)
    assert [action for _, action, _ in events()] == [Action.SNAPSHOT_CREATED]


def test_granting_and_revoking_a_role(batch_admin, events):
    newbie = UserFactory(username="newbie")
    assert role_add(user=newbie, role=ROLE_RESEARCHER, actor=batch_admin)
    assert not role_add(user=newbie, role=ROLE_RESEARCHER, actor=batch_admin)  # had it: nothing to record
    assert role_remove(user=newbie, role=ROLE_RESEARCHER, actor=batch_admin)
    assert not role_remove(user=newbie, role=ROLE_RESEARCHER, actor=batch_admin)
    pk = str(newbie.pk)
    assert events() == [("boss", Action.ROLE_GRANTED, pk), ("boss", Action.ROLE_REVOKED, pk)]
    assert [e.details for e in AuditEvent.objects.order_by("pk")] == [{"role": "researcher"}] * 2


def test_the_role_commands_record_the_system_as_actor(events):
    newbie = UserFactory(username="newbie")
    call_command("add_role", "newbie", "labeler", stdout=io.StringIO())
    call_command("remove_role", "newbie", "labeler", stdout=io.StringIO())
    assert events() == [
        (None, Action.ROLE_GRANTED, str(newbie.pk)),
        (None, Action.ROLE_REVOKED, str(newbie.pk)),
    ]


def test_a_role_changed_in_the_django_admin(client, events):
    root = UserFactory(username="root", is_staff=True, is_superuser=True)
    newbie = UserFactory(username="newbie", roles=[ROLE_LABELER])
    client.force_login(root)
    researcher_group = newbie.groups.model.objects.get(name=ROLE_RESEARCHER)
    response = client.post(
        reverse("admin:auth_user_change", args=[newbie.pk]),
        {
            "username": "newbie",
            "is_active": "on",
            "groups": [researcher_group.pk],
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    pk = str(newbie.pk)
    assert events() == [
        ("root", Action.ADMIN_CHANGED, pk),  # every admin write is (audit.admin_writes)
        ("root", Action.ROLE_GRANTED, pk),
        ("root", Action.ROLE_REVOKED, pk),
    ]
    roles = AuditEvent.objects.filter(action__startswith="role.").order_by("pk")
    assert [e.details["role"] for e in roles] == [ROLE_RESEARCHER, ROLE_LABELER]


def test_creating_a_batch(batch_admin, events):
    batch = batch_create(name="week 12", kind=Batch.Kind.RANKING, created_by=batch_admin)
    assert events() == [("boss", Action.BATCH_CREATED, str(batch.pk))]


def test_every_state_change_of_a_batch_and_no_event_for_no_change(batch_admin, events):
    batch = BatchFactory(status=Batch.Status.DRAFT)
    for action in ("open", "pause", "pause", "resume", "close"):
        batch_transition(batch=batch, action=action, actor=batch_admin)
    with pytest.raises(ServiceError):
        batch_transition(batch=batch, action="pause", actor=batch_admin)  # closed is final
    pk = str(batch.pk)
    assert events() == [
        ("boss", Action.BATCH_OPENED, pk),
        ("boss", Action.BATCH_PAUSED, pk),
        ("boss", Action.BATCH_RESUMED, pk),
        ("boss", Action.BATCH_CLOSED, pk),
    ]
    assert AuditEvent.objects.order_by("pk").first().details == {"from": "draft", "to": "active"}


def test_adding_and_removing_labelers(batch_admin, labeler, events):
    batch = BatchFactory()
    batch_labelers_add(batch=batch, users=[labeler], actor=batch_admin)
    batch_labelers_remove(batch=batch, users=[labeler], actor=batch_admin)
    pk = str(batch.pk)
    assert events() == [
        ("boss", Action.BATCH_LABELERS_ADDED, pk),
        ("boss", Action.BATCH_LABELERS_REMOVED, pk),
    ]
    assert AuditEvent.objects.order_by("pk").last().details == {"labelers": ["lab1"], "leases_ended": 0}


def test_a_refused_change_records_nothing(batch_admin, other_labeler):
    other_labeler.groups.clear()  # no longer a labeler: refused
    with pytest.raises(ServiceError, match="not labelers"):
        batch_labelers_add(batch=BatchFactory(), users=[other_labeler], actor=batch_admin)
    assert AuditEvent.objects.count() == 0


def test_the_pages_and_the_api_pass_the_signed_in_user_as_actor(client, batch_admin, labeler, events):
    batch = BatchFactory()
    client.force_login(batch_admin)
    client.post(reverse("manage:batch_action", args=[batch.pk]), {"action": "pause"})
    client.post(reverse("manage:batch_labelers", args=[batch.pk]), {"op": "add", "add-users": [labeler.pk]})
    client.post(f"/api/v1/batches/{batch.pk}/resume/")
    client.post(
        f"/api/v1/batches/{batch.pk}/labelers/", {"remove": ["lab1"]}, content_type="application/json"
    )
    assert [(actor, action) for actor, action, _ in events()] == [
        ("boss", Action.BATCH_PAUSED),
        ("boss", Action.BATCH_LABELERS_ADDED),
        ("boss", Action.BATCH_RESUMED),
        ("boss", Action.BATCH_LABELERS_REMOVED),
    ]


def test_the_datasets_page_and_api_pass_the_researcher_as_actor(client, media, researcher, events, settings):
    settings.CELERY_BROKER_URL, settings.TASKS_INLINE = "", True  # the export jobs run at once
    client.force_login(researcher)
    client.post(reverse("manage:datasets"), {"kind": "sft", "rankings": "all"})
    first = DatasetSnapshot.objects.get()
    client.post(reverse("manage:dataset_delete", args=[first.pk]))
    response = client.post(
        "/api/v1/datasets/", {"kind": "prompts", "filters": {}}, content_type="application/json"
    )
    client.delete(f"/api/v1/datasets/{response.json()['snapshot']}/")
    assert [(actor, action) for actor, action, _ in events()] == [
        ("sci", Action.SNAPSHOT_CREATED),
        ("sci", Action.SNAPSHOT_DELETED),
        ("sci", Action.SNAPSHOT_CREATED),
        ("sci", Action.SNAPSHOT_DELETED),
    ]
