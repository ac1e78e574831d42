"""Task.labels_submitted, the count of submitted assignments that Postgres triggers keep (migration 0008)
so the hand-out passes over finished tasks cheaply. It is a first filter only: the exact count decides."""

import pytest
from django.db import connection

from labeling.models import Assignment, Task
from labeling.services.assignment import assignment_next, assignment_skip
from labeling.services.rankings import ranking_submit
from labeling.vocab import ROLE_LABELER
from tests.factories import BatchFactory, UserFactory, assignment_for, ranking_task

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers are Postgres's"),
]


def submitted(task) -> int:
    return Task.objects.get(pk=task.pk).labels_submitted


def rank(assignment) -> None:
    ids = list(assignment.task.task_completions.values_list("completion_id", flat=True))
    ranking_submit(assignment=assignment, tiers=[ids])


def test_submits_count_and_skips_and_hand_outs_do_not(labeler, other_labeler):
    task = ranking_task(BatchFactory(overlap=3))
    rank(assignment_for(task, labeler))
    assignment_skip(assignment=assignment_for(task, other_labeler), reason="unreadable")
    assignment_for(task, UserFactory(username="third", roles=[ROLE_LABELER]))
    assert submitted(task) == 1


def test_the_count_follows_status_changes_and_deletes(labeler):
    task = ranking_task(BatchFactory())
    assignment = Assignment.objects.create(
        task=task, batch=task.batch, labeler=labeler, lease_expires_at="2999-01-01T00:00Z", status="submitted"
    )
    assert submitted(task) == 1
    Assignment.objects.filter(pk=assignment.pk).update(status="expired")
    assert submitted(task) == 0
    Assignment.objects.filter(pk=assignment.pk).update(status="submitted")
    Assignment.objects.filter(pk=assignment.pk).delete()
    assert submitted(task) == 0


def test_a_finished_task_is_passed_over_and_a_raised_overlap_opens_it_again(labeler, other_labeler):
    batch = BatchFactory(overlap=1)
    batch.labelers.add(labeler, other_labeler)
    first, second = ranking_task(batch), ranking_task(batch)
    rank(assignment_next(labeler=labeler, batch=batch))
    assert assignment_next(labeler=other_labeler, batch=batch).task_id == second.pk
    batch.overlap = 2
    batch.save(update_fields=["overlap"])
    rank(Assignment.objects.get(labeler=other_labeler, task=second))
    assert assignment_next(labeler=other_labeler, batch=batch).task_id == first.pk


def test_an_undercount_never_lets_a_task_past_its_overlap(labeler, other_labeler):
    batch = BatchFactory(overlap=1)
    batch.labelers.add(labeler, other_labeler)
    task = ranking_task(batch)
    rank(assignment_next(labeler=labeler, batch=batch))
    Task.objects.filter(pk=task.pk).update(labels_submitted=0)  # as if written with the triggers off
    assert assignment_next(labeler=other_labeler, batch=batch) is None
