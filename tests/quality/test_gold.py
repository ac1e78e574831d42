"""Gold tasks: marking a reference, gold accuracy by hand, and mixing them in at the batch's rate."""

import pytest
from django.db import IntegrityError

from core.errors import ServiceError
from labeling.models import Assignment, Batch, Task
from labeling.quality.dashboard import labeler_stats
from labeling.quality.gold import gold_due, gold_task_candidates, non_gold_q
from labeling.services.gold import gold_mark, gold_unmark
from labeling.services.rankings import ranking_submit
from tests.factories import BatchFactory, assignment_for, scored

from .helpers import ids, labelers, rank, task_in, tiers_of

pytestmark = pytest.mark.django_db


def test_marking_a_reference_ranking_checks_it_like_a_submission():
    task = task_in(k=3)
    with pytest.raises(ServiceError, match="missing"):
        gold_mark(task=task, tiers=tiers_of(task, "a b"))
    with pytest.raises(ServiceError, match="ties every output"):
        gold_mark(task=task, tiers=tiers_of(task, "abc"))
    gold_mark(task=task, tiers=tiers_of(task, "b ac"))
    task.refresh_from_db()
    assert task.is_gold and task.gold_tiers == tiers_of(task, "b ac")
    gold_unmark(task=task)
    task.refresh_from_db()
    assert not task.is_gold and task.gold_tiers is None


def test_the_database_refuses_a_gold_task_without_reference():
    task = task_in()
    with pytest.raises(IntegrityError):
        Task.objects.filter(pk=task.pk).update(is_gold=True)


def test_gold_accuracy_by_hand():
    [lab] = labelers(1)
    batch = BatchFactory()
    t1, t2 = task_in(batch, k=4), task_in(batch, k=3)
    gold_mark(task=t1, tiers=tiers_of(t1, "a b cd"))
    gold_mark(task=t2, tiers=tiers_of(t2, "a b c"))
    rank(t1, lab, "b a c d")  # c/d tied in the reference: 5 pairs, a/b wrong -> 4 of 5
    rank(t2, lab, "a bc")  # b/c tied by the labeler: 2 pairs, both right -> 2 of 2
    rank(task_in(batch), lab, "d c b a")  # not gold: does not count
    [stats] = labeler_stats(labeler_ids=[lab.pk])
    assert stats.gold_accuracy.value == pytest.approx(6 / 7)
    assert (stats.gold_accuracy.numerator, stats.gold_accuracy.denominator, stats.gold_accuracy.tasks) == (
        6,
        7,
        2,
    )


def test_gold_slots_follow_the_rate_at_places_random_per_labeler():
    def stream(seed: str, n: int = 200, rate: float = 0.2) -> list[int]:
        gold = normal = 0
        places = []
        for i in range(n):
            if gold_due(gold_done=gold, normal_done=normal, rate=rate, seed=seed):
                gold += 1
                places.append(i)
            else:
                normal += 1
        return places

    first, second = stream("gold:1:1"), stream("gold:1:2")
    assert len(first) == len(second) == 40  # exactly one gold task in every block of 5
    assert all(5 * j <= p < 5 * (j + 1) for j, p in enumerate(first))
    assert first != second
    assert len({p % 5 for p in first}) > 1  # not the same place in every block
    assert not gold_due(gold_done=0, normal_done=10, rate=0, seed="x")
    assert gold_due(gold_done=3, normal_done=0, rate=1, seed="x")


def _hand_out_like_assignment_next(labeler, batch) -> Assignment | None:
    """What assignment_next does once the hooks are in: a due gold task first, else a normal one."""
    gold = gold_task_candidates(labeler=labeler, batch=batch)
    if gold is not None:
        task = gold.first()
    else:
        done = Assignment.objects.filter(labeler=labeler, batch=batch).values("task")
        task = batch.tasks.filter(non_gold_q()).exclude(pk__in=done).order_by("pk").first()
    return assignment_for(task, labeler) if task else None


def test_gold_tasks_are_mixed_in_at_the_rate_and_given_to_every_labeler():
    batch = BatchFactory(overlap=1, gold_rate=0.25)
    normal = [task_in(batch, k=2) for _ in range(18)]
    gold = [task_in(batch, k=2) for _ in range(6)]
    for task in gold:
        gold_mark(task=task, tiers=tiers_of(task, "a b"))
    orders = {}
    for lab in labelers(2):
        seen = []
        for _ in range(12):
            assignment = _hand_out_like_assignment_next(lab, batch)
            ranking_submit(
                assignment=assignment, tiers=[ids(assignment.task)], ratings=scored([ids(assignment.task)])
            )
            seen.append(assignment.task.is_gold)
        assert sum(seen) == 3  # one in every block of four
        orders[lab.pk] = list(
            Assignment.objects.filter(labeler=lab, task__is_gold=True).values_list("task", flat=True)
        )
    assert len(normal) == 18
    a, b = orders.values()
    assert a != b  # each labeler meets the gold tasks in their own order


def test_no_gold_is_due_without_rate_or_when_all_are_done():
    [lab] = labelers(1)
    batch = BatchFactory(gold_rate=0.0)
    task = task_in(batch)
    gold_mark(task=task, tiers=tiers_of(task, "a b c d"))
    assert gold_task_candidates(labeler=lab, batch=batch) is None
    Batch.objects.filter(pk=batch.pk).update(gold_rate=1.0)
    batch.refresh_from_db()
    assert list(gold_task_candidates(labeler=lab, batch=batch)) == [task]
    rank(task, lab, "a b c d")
    assert gold_task_candidates(labeler=lab, batch=batch) is None


def test_a_qualification_batch_hands_out_its_gold_tasks_always():
    [lab] = labelers(1)
    batch = BatchFactory(is_qualification=True)
    tasks = [task_in(batch) for _ in range(3)]
    for t in tasks:
        gold_mark(task=t, tiers=tiers_of(t, "a b c d"))
    assert set(gold_task_candidates(labeler=lab, batch=batch)) == set(tasks)


@pytest.mark.urls("tests.quality.urls")
def test_a_gold_task_looks_like_any_other_in_the_workspace(client, labeler):
    from django.urls import NoReverseMatch, reverse

    batch = BatchFactory(gold_rate=0.5)
    batch.labelers.add(labeler)
    gold, normal = task_in(batch), task_in(batch)
    gold_mark(task=gold, tiers=tiers_of(gold, "b a c d"))
    client.force_login(labeler)
    pages = []
    for task in (gold, normal):
        assignment = assignment_for(task, labeler)
        try:
            url = reverse("workspace-assignment", args=[assignment.pk])
        except NoReverseMatch:
            pytest.skip("the workspace's ranking page is not there yet")
        pages.append(client.get(url).content.decode())
        assignment.delete()
    gold_page, normal_page = pages
    assert "gold" not in gold_page.lower()
    assert gold_page.count("<") == normal_page.count("<")  # the same markup, only texts and ids differ
