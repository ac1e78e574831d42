"""Races around the undo window, each request on its own database connection: an undo against the
sweep that writes labels when the window closes, an undo against another labeler's hand-out, and a
resubmit after undo against a lapsing lease. Nothing ends with a label and a reopened draft at once, a
task past its overlap, or one labeler twice on a task."""

import threading
import time
from datetime import timedelta
from functools import partial

import pytest
from django.db import connection, connections, transaction
from django.utils import timezone

from core.errors import AssignmentUnavailable
from core.roles import ROLE_LABELER
from labeling.handout.next import assignment_next
from labeling.handout.rules import taken_q
from labeling.models import Assignment, Ranking
from labeling.services.rankings import ranking_submit
from labeling.services.undo import UndoClosed, submission_undo, submissions_finalise
from tests.factories import BatchFactory, UserFactory, ranking_task, scored
from tests.labeling.test_assignment_concurrency import other_connection, wait_until_blocked

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need Postgres"),
    pytest.mark.django_db(transaction=True, serialized_rollback=True),
]

Status = Assignment.Status
ROUNDS = 8


@pytest.fixture(autouse=True)
def window(settings):
    settings.LABELING_UNDO_SECONDS = 30


def in_thread(call, results, index, barrier=None):
    def work():
        try:
            if barrier is not None:
                barrier.wait(timeout=30)
            results[index] = call()
        except Exception as exc:  # the outcome under test: kept, compared below
            results[index] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def pending_ranking(batch, *labelers):
    """A task of the batch, handed to the first labeler and submitted by them (pending)."""
    task = ranking_task(batch=batch, k=2)
    ids = list(task.task_completions.values_list("completion_id", flat=True))
    mine = assignment_next(labeler=labelers[0], batch=batch)
    assert mine.task_id == task.pk
    assert ranking_submit(assignment=mine, tiers=[ids], ratings=scored([ids])) is None
    return task, mine, ids


def labelers(prefix, n=2):
    return [UserFactory(username=f"{prefix}{i}", roles=[ROLE_LABELER]) for i in range(n)]


def test_an_undo_in_flight_as_the_window_closes_keeps_the_sweep_off():
    """The undo passes its check just before the window closes and is still committing when the sweep
    runs: the sweep passes over the locked row, so the label is never written for a reopened task."""
    first, _ = people = labelers("edge")
    batch = BatchFactory(overlap=1)
    batch.labelers.add(*people)
    task, mine, _ = pending_ranking(batch, first)
    closes = timezone.now() + timedelta(seconds=1)
    Assignment.objects.filter(pk=mine.pk).update(undo_until=closes)
    undone, release, results = threading.Event(), threading.Event(), [None]

    def undo_and_stall():
        with transaction.atomic():
            outcome = submission_undo(assignment_id=mine.pk, labeler=first)
            undone.set()
            release.wait(timeout=30)  # still uncommitted while the window closes and the sweep runs
        return outcome

    thread = in_thread(undo_and_stall, results, 0)
    assert undone.wait(timeout=30)
    time.sleep(max(0.0, (closes - timezone.now()).total_seconds()) + 0.05)
    swept_meanwhile = submissions_finalise()
    release.set()
    thread.join()

    assert not isinstance(results[0], Exception), results[0]
    assert swept_meanwhile == 0 and submissions_finalise() == 0
    reopened = Assignment.objects.get(pk=mine.pk)
    assert reopened.status == Status.ACTIVE and reopened.draft["tiers"]
    assert not Ranking.objects.filter(task=task).exists()


def test_a_sweep_in_flight_makes_the_undo_wait_and_then_refuse():
    """The sweep holds the row while it writes the labels; an undo arriving then waits for it and is
    refused: the label counts, and the task is not reopened beside it."""
    first, _ = people = labelers("sweep")
    batch = BatchFactory(overlap=1)
    batch.labelers.add(*people)
    task, mine, _ = pending_ranking(batch, first)
    Assignment.objects.filter(pk=mine.pk).update(undo_until=timezone.now())
    written, release, results = threading.Event(), threading.Event(), [None, None]

    def sweep_and_stall():
        with transaction.atomic():
            count = submissions_finalise()
            written.set()
            release.wait(timeout=30)
        return count

    sweeper = in_thread(sweep_and_stall, results, 0)
    assert written.wait(timeout=30)
    with other_connection(autocommit=True) as watcher:
        undoer = in_thread(lambda: submission_undo(assignment_id=mine.pk, labeler=first), results, 1)
        wait_until_blocked(watcher)  # the undo waits on the sweep's row lock
        release.set()
        sweeper.join()
        undoer.join()

    assert results[0] == 1
    assert isinstance(results[1], UndoClosed)
    assert Assignment.objects.get(pk=mine.pk).status == Status.SUBMITTED
    assert Ranking.objects.filter(task=task).count() == 1


@pytest.mark.parametrize("overlap", [1, 2])
def test_undo_racing_other_labelers_hand_outs_never_passes_the_overlap(overlap):
    """At once: the labeler undoes a pending submission while the others ask for work. The task is held
    throughout (pending, then a live lease), so it never has more holders than its overlap."""
    for round_ in range(ROUNDS):
        people = labelers(f"race{overlap}-{round_}-", n=overlap + 2)
        batch = BatchFactory(overlap=overlap)
        batch.labelers.add(*people)
        task, mine, _ = pending_ranking(batch, people[0])
        # The other overlap - 1 labels are held too, so the task is full: nobody else may get it.
        for other in people[1:overlap]:
            assignment_next(labeler=other, batch=batch)
        barrier = threading.Barrier(3)
        results = [None] * 3
        calls = [
            partial(submission_undo, assignment_id=mine.pk, labeler=people[0]),
            partial(assignment_next, labeler=people[overlap], batch=batch),
            partial(assignment_next, labeler=people[overlap + 1], batch=batch),
        ]
        threads = [in_thread(call, results, i, barrier) for i, call in enumerate(calls)]
        for thread in threads:
            thread.join()

        assert not any(isinstance(r, Exception) for r in results), results
        assert results[1] is None and results[2] is None
        holders = Assignment.objects.filter(task=task).filter(taken_q(timezone.now()))
        assert holders.count() == overlap
        assert holders.values("labeler").distinct().count() == overlap


def test_a_resubmit_after_undo_racing_a_lapsed_lease_ends_with_one_label():
    """The reopened lease has lapsed; the labeler resubmits while another labeler asks for work, at
    once. Either the resubmit holds the task (and the other gets nothing) or the task went to the other
    labeler (and the resubmit is refused): never both."""
    for round_ in range(ROUNDS):
        first, second = labelers(f"lapse{round_}-")
        batch = BatchFactory(overlap=1)
        batch.labelers.add(first, second)
        task, mine, ids = pending_ranking(batch, first)
        submission_undo(assignment_id=mine.pk, labeler=first)
        Assignment.objects.filter(pk=mine.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
        barrier = threading.Barrier(2)
        results = [None, None]
        calls = [
            partial(ranking_submit, assignment=mine, tiers=[ids], ratings=scored([ids])),
            partial(assignment_next, labeler=second, batch=batch),
        ]
        threads = [in_thread(call, results, i, barrier) for i, call in enumerate(calls)]
        for thread in threads:
            thread.join()

        resubmitted, offered = results
        if offered is None:
            assert resubmitted is None  # pending again, holding the task
            assert Assignment.objects.get(pk=mine.pk).status == Status.PENDING
        else:
            assert isinstance(resubmitted, AssignmentUnavailable), resubmitted
            assert offered.task_id == task.pk
        holders = Assignment.objects.filter(task=task).filter(taken_q(timezone.now()))
        assert holders.count() == 1
