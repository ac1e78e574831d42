"""50 labeler requests at once, each on its own database connection: no task goes past its overlap and
no labeler ends up with two live assignments in the batch (SELECT ... FOR UPDATE SKIP LOCKED). A submit
still in flight when its lease ends keeps its task from the next labeler.
Serialized rollback: the test starts from the migrated state (role groups) whatever ran before."""

import threading
import time
from collections import Counter
from datetime import timedelta

import psycopg
import pytest
from django.db import connection, connections
from django.utils import timezone

from core.roles import ROLE_LABELER
from labeling.handout.next import assignment_next
from labeling.handout.rules import live_q
from labeling.models import Assignment, Ranking
from labeling.services.rankings import ranking_submit
from tests.factories import BatchFactory, UserFactory, ranking_task, scored

THREADS = 50


def ask_all_at_once(calls):
    """Run each (labeler, batch) call in its own thread and connection, released together by a barrier."""
    barrier = threading.Barrier(len(calls))
    results, errors = [None] * len(calls), []

    def work(index, labeler, batch):
        try:
            barrier.wait(timeout=30)
            results[index] = assignment_next(labeler=labeler, batch=batch)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=work, args=(i, *call)) for i, call in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    return results


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need Postgres")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
@pytest.mark.parametrize("labelers, tasks, overlap", [(30, 8, 3), (50, 30, 2)], ids=["scarce", "plenty"])
def test_concurrent_requests_never_exceed_the_overlap(labelers, tasks, overlap):
    batch = BatchFactory(overlap=overlap)
    for _ in range(tasks):
        ranking_task(batch=batch, k=2)
    users = [UserFactory(username=f"conc{i}", roles=[ROLE_LABELER]) for i in range(labelers)]
    batch.labelers.add(*users)
    # Every labeler asks at least once; the rest of the 50 threads are the same labelers asking again.
    calls = [(users[i % labelers], batch) for i in range(THREADS)]

    results = ask_all_at_once(calls)

    live = Assignment.objects.filter(batch=batch).filter(live_q(timezone.now()))
    per_task = Counter(live.values_list("task_id", flat=True))
    per_labeler = Counter(live.values_list("labeler_id", flat=True))
    assert max(per_task.values()) <= overlap
    assert max(per_labeler.values()) == 1
    assert live.count() == min(labelers, tasks * overlap)  # nobody was turned away while room was left
    handed = {}
    for (user, _), assignment in zip(calls, results, strict=True):
        if assignment is not None:  # the same labeler asking twice got the same assignment
            assert handed.setdefault(user.pk, assignment.pk) == assignment.pk


LEASE_LEFT = timedelta(seconds=1)  # time for the submit to pass its check and stop at the held lock


def other_connection(**kwargs) -> psycopg.Connection:
    """A connection of its own to the test database, outside Django."""
    params = connection.get_connection_params()
    keys = ("dbname", "user", "password", "host", "port")
    return psycopg.connect(**{key: params[key] for key in keys if params.get(key)}, **kwargs)


def wait_until_blocked(watcher: psycopg.Connection) -> None:
    """Return once a session of this database waits on a lock (the submit, at the held row). The watcher
    is in autocommit: pg_stat_activity is read once per transaction."""
    while not watcher.execute(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    ).fetchone()[0]:
        time.sleep(0.01)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="row locks need Postgres")
@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_submit_in_flight_when_its_lease_ends_keeps_the_task_from_the_next_labeler():
    """The first labeler submits while the lease is live; the submit stalls past its check (another
    connection holds an uncommitted ranking row of the same assignment, so its insert waits) until the
    lease has lapsed, and a second labeler asks for work meanwhile. Before, the second labeler got the
    task and the overlap-1 task ended with 2 labels."""
    batch = BatchFactory(overlap=1)
    task = ranking_task(batch=batch, k=2)
    first, second = (UserFactory(username=f"straddle{n}", roles=[ROLE_LABELER]) for n in (1, 2))
    batch.labelers.add(first, second)
    held = assignment_next(labeler=first, batch=batch)
    ends = timezone.now() + LEASE_LEFT
    Assignment.objects.filter(pk=held.pk).update(lease_expires_at=ends)
    ids = list(task.task_completions.values_list("completion_id", flat=True))
    failures = []

    def submit_first():
        try:
            ranking_submit(assignment=held, tiers=[ids], ratings=scored([ids]))
        except Exception as exc:  # pragma: no cover - reported below
            failures.append(exc)
        finally:
            connections.close_all()

    with other_connection() as blocker, other_connection(autocommit=True) as watcher:
        blocker.execute(
            "INSERT INTO labeling_ranking (assignment_id, task_id, labeler_id, tiers, all_unusable, comment,"
            " seconds_spent, created_at) VALUES (%s, %s, %s, '[]', false, '', 0, now())",
            [held.pk, task.pk, first.pk],
        )
        submitter = threading.Thread(target=submit_first)
        submitter.start()
        wait_until_blocked(watcher)
        assert timezone.now() < ends, "the submit reached the held row only after its lease ended"
        time.sleep((ends - timezone.now()).total_seconds() + 0.05)
        offered = assignment_next(labeler=second, batch=batch)
        blocker.rollback()  # the submit goes on
        submitter.join()
    assert not failures, failures
    if offered is not None:  # what happened before: the second labeler's ranking is stored as well
        ranking_submit(assignment=offered, tiers=[ids], ratings=scored([ids]))

    assert offered is None
    assert list(Ranking.objects.filter(task=task).values_list("labeler", flat=True)) == [first.pk]
