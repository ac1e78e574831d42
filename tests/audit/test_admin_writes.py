"""The labeling and training models in the Django admin: below superuser they are read, never written;
drafts and skip reasons are shown to no one there; a superuser's writes land in the audit log."""

import pytest
from django.contrib.auth.models import Group, Permission
from django.urls import reverse

from audit.models import Action, AuditEvent
from core.roles import ROLE_BATCH_ADMIN, ROLE_RESEARCHER
from labeling.models import Assignment, Batch, Completion
from labeling.roles import sync_role_permissions
from labeling.services.rankings import ranking_submit
from tests.factories import BatchFactory, UserFactory, assignment_for, ranking_task, scored

pytestmark = pytest.mark.django_db

DRAFT, SKIP_REASON = "half-written answer 7c1f", "the prompt asks for medical advice 9e2a"


@pytest.fixture
def staff_admin(client, batch_admin):
    batch_admin.is_staff = True
    batch_admin.save(update_fields=["is_staff"])
    client.force_login(batch_admin)
    return batch_admin


@pytest.fixture
def root(client):
    user = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(user)
    return user


@pytest.fixture
def work(labeler, other_labeler):
    """A drafted assignment, a skipped one, and a ranked task (its completions ranked by labeler)."""
    drafted = assignment_for(ranking_task(), labeler)
    drafted.draft = {"comment": DRAFT}
    drafted.save(update_fields=["draft"])
    skipped = assignment_for(ranking_task(), other_labeler)
    skipped.status, skipped.skip_reason = Assignment.Status.SKIPPED, SKIP_REASON
    skipped.save(update_fields=["status", "skip_reason"])
    ranked_task = ranking_task()
    ranked = assignment_for(ranked_task, labeler)
    ranking_submit(
        assignment=ranked,
        tiers=[[c.pk for c in ranked_task.completions.all()]],
        ratings=scored([[c.pk for c in ranked_task.completions.all()]]),
    )
    return {"drafted": drafted, "skipped": skipped, "completion": ranked_task.completions.first()}


def page(client, url) -> str:
    response = client.get(url)
    assert response.status_code == 200
    return response.content.decode()


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def test_a_batch_admin_reads_assignments_but_never_drafts_or_skip_reasons(client, staff_admin, work):
    pages = [page(client, reverse("admin:labeling_assignment_changelist"))]
    pages += [page(client, change_url(work[name])) for name in ("drafted", "skipped")]
    assert "Skipped" in pages[2]  # the page is there, the reason is not
    assert all(DRAFT not in p and SKIP_REASON not in p for p in pages)


def test_a_superuser_does_not_see_them_either(client, root, work):
    for name in ("drafted", "skipped"):
        shown = page(client, change_url(work[name]))
        assert DRAFT not in shown and SKIP_REASON not in shown


def test_a_batch_admin_cannot_mark_an_assignment_submitted(client, staff_admin, work):
    drafted = work["drafted"]
    assert 'name="_save"' not in page(client, change_url(drafted))
    form = {"task": drafted.task_id, "batch": drafted.batch_id, "labeler": drafted.labeler_id}
    response = client.post(change_url(drafted), {**form, "status": "submitted"})
    assert response.status_code == 403
    drafted.refresh_from_db()
    assert drafted.status == Assignment.Status.ACTIVE and drafted.task.labels_submitted == 0


def test_a_batch_admin_cannot_rewrite_a_ranked_completion(client, staff_admin, work):
    completion = work["completion"]
    assert 'name="_save"' not in page(client, change_url(completion))
    response = client.post(change_url(completion), {"prompt": completion.prompt_id, "text": "rewritten"})
    assert response.status_code == 403
    assert Completion.objects.get(pk=completion.pk).text == completion.text


def test_a_batch_admin_adds_deletes_and_changes_nothing(client, staff_admin, work):
    batch = BatchFactory(name="week 12")
    batch.labelers.add(work["drafted"].labeler)
    for model in ("batch", "task", "prompt", "completion", "assignment", "ranking", "demonstration"):
        assert client.get(reverse(f"admin:labeling_{model}_add")).status_code == 403, model
    for model in ("modelversion", "trainingrun"):
        assert client.get(reverse(f"admin:training_{model}_add")).status_code == 403, model
    delete = reverse("admin:labeling_batch_delete", args=[batch.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    changed = {"name": "renamed", "kind": batch.kind, "status": "closed", "overlap": 3, "labelers": []}
    assert client.post(change_url(batch), changed).status_code == 403
    batch.refresh_from_db()
    assert (batch.name, batch.status, batch.labelers.count()) == ("week 12", Batch.Status.ACTIVE, 1)
    assert not AuditEvent.objects.filter(action__startswith="admin.").exists()


def test_a_superusers_edit_is_audited_with_what_it_changed(client, root, work):
    completion = work["completion"]
    form = {"prompt": completion.prompt_id, "text": "rewritten", "source_name": completion.source_name}
    response = client.post(change_url(completion), form)
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action=Action.ADMIN_CHANGED)
    assert (event.actor, event.object_type, event.object_id) == (
        root,
        "labeling.completion",
        str(completion.pk),
    )
    assert event.details == {
        "via": "admin",
        "fields": ["text"],
        "before": {"text": completion.text},
        "after": {"text": "rewritten"},
    }


def test_a_superusers_delete_is_audited(client, root, work):
    drafted = work["drafted"]
    delete = reverse("admin:labeling_assignment_delete", args=[drafted.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    event = AuditEvent.objects.get(action=Action.ADMIN_DELETED)
    assert (event.actor, event.object_id) == (root, str(drafted.pk))
    assert not Assignment.objects.filter(pk=drafted.pk).exists()


def test_batch_state_and_members_change_through_the_batch_pages_even_for_a_superuser(client, root, labeler):
    batch = BatchFactory(name="week 12")
    changed = {
        "name": "week 13",
        "kind": batch.kind,
        "overlap": 1,
        "lease_minutes": 30,
        "round_number": 0,
        "gold_rate": 0,
        "qualification_threshold": 0.7,
        "status": "closed",
        "labelers": [labeler.pk],
    }
    assert client.post(change_url(batch), changed).status_code == 302
    batch.refresh_from_db()
    assert (batch.name, batch.status, batch.labelers.count()) == ("week 13", Batch.Status.ACTIVE, 0)
    assert AuditEvent.objects.get(action=Action.ADMIN_CHANGED).details["fields"] == ["name"]


def test_after_migrate_the_roles_read_labeling_and_training_and_write_nothing(db):
    for role in (ROLE_BATCH_ADMIN, ROLE_RESEARCHER):
        held = set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))
        assert {"view_assignment", "view_completion", "view_modelversion", "view_trainingrun"} <= held
        assert not any(name.startswith(("add_", "change_", "delete_")) for name in held)


def test_migrate_takes_away_write_permissions_a_role_held_before(db):
    group = Group.objects.get(name=ROLE_BATCH_ADMIN)
    group.permissions.add(*Permission.objects.filter(codename__in=["change_assignment", "change_completion"]))
    sync_role_permissions()
    held = set(group.permissions.values_list("codename", flat=True))
    assert "change_assignment" not in held and "change_completion" not in held
    assert {"view_assignment", "view_completion", "view_ranking", "view_trainingrun"} <= held
    assert not any(name.startswith(("add_", "change_", "delete_")) for name in held)


def test_a_password_set_in_the_admin_is_audited_without_the_password(client, root, labeler):
    url = reverse("admin:auth_user_password_change", args=[labeler.pk])
    new = "a-new-long-passphrase-41"
    assert client.post(url, {"password1": new, "password2": new}).status_code == 302
    event = AuditEvent.objects.get(action=Action.ADMIN_CHANGED)
    assert (event.actor, event.object_id, event.details) == (
        root,
        str(labeler.pk),
        {"via": "admin", "fields": ["password"]},
    )
    labeler.refresh_from_db()
    assert labeler.check_password(new) and new not in str(event.details)
