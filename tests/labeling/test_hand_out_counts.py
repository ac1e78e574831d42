"""Task.labels_submitted, labels_active and earliest_lease_end: a task's assignments in short, which a
Postgres trigger keeps (migrations 0008 and 0010) so the hand-out passes over finished tasks and tasks full
of live leases cheaply. They are first filters only: the exact count decides."""

import threading
from datetime import timedelta

import pytest
from django.db import connection, connections
from django.utils import timezone

from core.roles import ROLE_LABELER
from labeling.handout.next import assignment_next
from labeling.handout.work import assignment_skip
from labeling.models import Assignment, Task
from labeling.services.rankings import ranking_submit
from tests.factories import BatchFactory, UserFactory, assignment_for, ranking_task, scored

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the triggers are Postgres's"),
]


def submitted(task) -> int:
    return Task.objects.get(pk=task.pk).labels_submitted


def summary(task) -> tuple[int, int, object]:
    row = Task.objects.filter(pk=task.pk).values_list(
        "labels_submitted", "labels_active", "earliest_lease_end"
    )
    return row.get()


def rank(assignment) -> None:
    ids = list(assignment.task.task_completions.values_list("completion_id", flat=True))
    ranking_submit(assignment=assignment, tiers=[ids], ratings=scored([ids]))


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


def test_active_leases_are_counted_with_the_earliest_end(labeler, other_labeler):
    batch = BatchFactory(overlap=3)
    batch.labelers.add(labeler, other_labeler)
    task = ranking_task(batch)
    assert summary(task) == (0, 0, None)
    mine = assignment_next(labeler=labeler, batch=batch)
    theirs = assignment_next(labeler=other_labeler, batch=batch)
    assert summary(task) == (0, 2, mine.lease_expires_at)
    Assignment.objects.filter(pk=mine.pk).update(lease_expires_at=mine.lease_expires_at + timedelta(hours=1))
    assert summary(task) == (0, 2, theirs.lease_expires_at)  # a renewed lease moves the earliest end
    rank(theirs)
    assert summary(task) == (1, 1, mine.lease_expires_at + timedelta(hours=1))
    assignment_skip(assignment=mine, reason="unreadable")
    assert summary(task) == (1, 0, None)
    Assignment.objects.filter(pk=mine.pk).update(status="active")  # taken up again
    assert summary(task) == (1, 1, mine.lease_expires_at + timedelta(hours=1))
    Assignment.objects.filter(pk=mine.pk).delete()
    assert summary(task) == (1, 0, None)


def test_moving_an_assignment_recounts_both_tasks(labeler):
    batch = BatchFactory(overlap=2)
    first, second = ranking_task(batch), ranking_task(batch)
    assignment = assignment_for(first, labeler)
    Assignment.objects.filter(pk=assignment.pk).update(task=second)
    assert summary(first) == (0, 0, None)
    assert summary(second) == (0, 1, assignment.lease_expires_at)


def test_a_task_full_of_live_leases_is_passed_over_until_one_lapses(labeler, other_labeler):
    batch = BatchFactory(overlap=1)
    third = UserFactory(username="third", roles=[ROLE_LABELER])
    batch.labelers.add(labeler, other_labeler, third)
    first, second = ranking_task(batch), ranking_task(batch)
    held = assignment_next(labeler=labeler, batch=batch)
    assert held.task_id == first.pk
    assert assignment_next(labeler=other_labeler, batch=batch).task_id == second.pk
    assert assignment_next(labeler=third, batch=batch) is None  # both full of live leases
    Assignment.objects.filter(pk=held.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert assignment_next(labeler=third, batch=batch).task_id == first.pk  # the lapsed lease frees it
    assert summary(first)[:2] == (0, 1)  # the lapsed one expired, the new one active


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_concurrent_submits_of_one_task_leave_exact_figures():
    """Each submit's trigger recounts after taking the task's row lock, so the last one sees them all."""
    labelers = [UserFactory(username=f"racer-{i}", roles=[ROLE_LABELER]) for i in range(6)]
    batch = BatchFactory(overlap=len(labelers))
    batch.labelers.add(*labelers)
    task = ranking_task(batch)
    assignments = [assignment_next(labeler=user, batch=batch) for user in labelers]
    assert summary(task)[:2] == (0, len(labelers))
    start, failures = threading.Barrier(len(assignments)), []

    def submit(assignment) -> None:
        try:
            start.wait()
            rank(assignment)
        except Exception as exc:  # reported below
            failures.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit, args=(a,)) for a in assignments]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert summary(task) == (len(labelers), 0, None)
