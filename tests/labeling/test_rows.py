"""core.rows: model instances from cursor rows, and the single-row INSERT and UPDATE of the hot paths."""

from datetime import datetime

import pytest
from django.db import connection
from django.db.models import signals
from django.utils import timezone

from core.rows import columns, insert, instance, update
from labeling.models import Assignment, Ranking
from tests.factories import BatchFactory, ranking_task

pytestmark = pytest.mark.django_db


def test_instance_converts_as_the_orm_does(labeler):
    task = ranking_task(BatchFactory())
    stored = Assignment.objects.create(
        task=task, batch=task.batch, labeler=labeler, lease_expires_at=timezone.now(), draft={"a": [1, 2]}
    )
    attnames, listed = columns(Assignment, "a")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {listed} FROM labeling_assignment a WHERE a.id = %s", [stored.pk])
        row = cursor.fetchone()
    read = instance(Assignment, attnames, row)
    assert read.draft == {"a": [1, 2]}  # jsonb comes back as text: JSONField's converter parses it
    assert isinstance(read.created_at, datetime) and read.created_at.tzinfo is not None
    assert not read._state.adding and read.pk == stored.pk
    fields = ("id", "status")  # only some columns: the rest is deferred, read when used
    few = instance(Assignment, fields, (stored.pk, "active"))
    assert few.get_deferred_fields() == {f.attname for f in Assignment._meta.concrete_fields} - set(fields)
    assert few.display_order == []  # read from the database on first use
    with pytest.raises(ValueError, match="no column nonsense"):
        instance(Assignment, ("id", "nonsense"), (1, 2))


def test_insert_and_update_write_what_save_would(labeler):
    task = ranking_task(BatchFactory())
    made = insert(Assignment(task=task, batch=task.batch, labeler=labeler, lease_expires_at=timezone.now()))
    stored = Assignment.objects.get(pk=made.pk)
    assert (stored.status, stored.draft, stored.display_order) == ("active", {}, [])  # field defaults
    assert stored.created_at == made.created_at is not None  # auto_now_add applied
    made.status, made.draft = "submitted", {"kept": True}
    update(made, ["status", "draft"])
    stored.refresh_from_db()
    assert (stored.status, stored.draft) == ("submitted", {"kept": True})


@pytest.mark.parametrize("model", [Assignment, Ranking])
def test_nothing_listens_to_the_saves_the_hot_paths_skip(model):
    # insert() and update() send no pre_save/post_save: fine only while nothing listens for these models.
    for signal in (signals.pre_save, signals.post_save):
        assert not signal.has_listeners(model), f"a {signal} receiver for {model.__name__}: use save()"
