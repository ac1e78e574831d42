"""50 labeler requests at once, each on its own database connection: no task goes past its overlap and
no labeler ends up with two live assignments in the batch (SELECT ... FOR UPDATE SKIP LOCKED).
Serialized rollback: the test starts from the migrated state (role groups) whatever ran before."""

import threading
from collections import Counter

import pytest
from django.db import connection, connections
from django.utils import timezone

from labeling.models import Assignment
from labeling.services.assignment import assignment_next, live_q
from labeling.vocab import ROLE_LABELER
from tests.factories import BatchFactory, UserFactory, ranking_task

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
