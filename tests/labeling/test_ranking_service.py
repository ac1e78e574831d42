"""ranking_submit: a ranking and its comparisons in one transaction, or a clear error and nothing."""

import pytest

from core.errors import AssignmentUnavailable, InvalidRanking
from labeling.models import Assignment, Comparison, Ranking, Rating
from labeling.services.rankings import ranking_submit
from tests.factories import BatchFactory, CompletionFactory, assignment_for, ranking_task, scored

pytestmark = pytest.mark.django_db


def ids(task):
    return list(task.task_completions.values_list("completion_id", flat=True))


def counts():
    return Ranking.objects.count(), Rating.objects.count(), Comparison.objects.count()


def test_a_ranking_with_ties_writes_exactly_the_implied_pairs(labeler):
    task = ranking_task(k=4)
    a, b, c, d = ids(task)
    ranking = ranking_submit(
        assignment=assignment_for(task, labeler),
        tiers=[[a], [b, c], [d]],
        ratings={
            a: {"likert": 6, "flags": {"hallucination": False}},
            b: {"likert": 4},
            c: {"likert": 4},
            d: {"likert": 2, "flags": {"hallucination": True}},
        },
        seconds_spent=42,
    )
    pairs = set(Comparison.objects.filter(ranking=ranking).values_list("better_id", "worse_id"))
    assert pairs == {(a, b), (a, c), (a, d), (b, d), (c, d)}  # no (b, c): a tie implies nothing
    assert (
        Comparison.objects.filter(
            ranking=ranking, batch=task.batch, prompt=task.prompt, labeler=labeler
        ).count()
        == 5
    )
    tiers = dict(Rating.objects.filter(ranking=ranking).values_list("completion_id", "tier"))
    assert tiers == {a: 0, b: 1, c: 1, d: 2}
    assert Rating.objects.get(ranking=ranking, completion_id=d).flags == {"hallucination": True}
    assert Rating.objects.get(ranking=ranking, completion_id=a).likert == 6
    assert Assignment.objects.get(pk=ranking.assignment_id).status == Assignment.Status.SUBMITTED


def test_all_tied_gives_no_comparisons(labeler):
    task = ranking_task(k=3)
    ranking = ranking_submit(
        assignment=assignment_for(task, labeler), tiers=[ids(task)], ratings=scored([ids(task)])
    )
    assert ranking.comparisons.count() == 0


def test_submitting_twice_stores_once(labeler):
    task = ranking_task(k=2)
    assignment = assignment_for(task, labeler)
    first = ranking_submit(
        assignment=assignment, tiers=[[i] for i in ids(task)], ratings=scored([[i] for i in ids(task)])
    )
    second = ranking_submit(
        assignment=assignment,
        tiers=[[i] for i in reversed(ids(task))],
        ratings=scored([[i] for i in reversed(ids(task))]),
    )
    assert first.pk == second.pk
    assert counts() == (1, 2, 1)


@pytest.mark.parametrize(
    "make_tiers, ratings, message",
    [
        (lambda i, other: [[i[0]], [i[1]], [i[2]]], None, "missing: "),
        (lambda i, other: [[i[0]], [i[1], i[0]], [i[2]], [i[3]]], None, "more than once"),
        (
            lambda i, other: [[i[0]], [i[1]], [i[2]], [i[3], other]],
            None,
            "not one of this task's completions",
        ),
        (lambda i, other: [[i[0]], [], [i[1]], [i[2]], [i[3]]], None, "tier 2 is empty"),
        (
            lambda i, other: [[i[0]], [i[1]], [i[2]], [i[3]]],
            {"0": {"likert": 0}},
            "likert must be an integer from 1 to 7",
        ),
        (
            lambda i, other: [[i[0]], [i[1]], [i[2]], [i[3]]],
            {"0": {"likert": 8}},
            "likert must be an integer from 1 to 7",
        ),
        (lambda i, other: [], None, "non-empty list"),
        (lambda i, other: [[i[0]], [i[1]], [i[2]], ["x"]], None, "is not a completion id"),
        (lambda i, other: [[i[0]], [i[1]], [i[2]], [i[3]]], {"0": {"flags": {"rude": True}}}, "unknown flag"),
    ],
    ids=[
        "missing",
        "duplicate",
        "other-task",
        "empty-tier",
        "likert-0",
        "likert-8",
        "no-tiers",
        "not-an-id",
        "unknown-flag",
    ],
)
def test_a_bad_ranking_raises_a_clear_error_and_writes_nothing(labeler, make_tiers, ratings, message):
    task = ranking_task(k=4)
    other = CompletionFactory().pk
    i = ids(task)
    if ratings is not None:  # key the rating by a real completion of the task
        ratings = {i[0]: next(iter(ratings.values()))}
    assignment = assignment_for(task, labeler)
    before = counts()
    with pytest.raises(InvalidRanking, match=message):
        ranking_submit(assignment=assignment, tiers=make_tiers(i, other), ratings=ratings)
    assert counts() == before
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.ACTIVE


def test_a_late_submission_is_accepted_while_nobody_took_the_task(labeler):
    task = ranking_task(k=2)
    assignment = assignment_for(task, labeler, minutes=-5)
    ranking_submit(assignment=assignment, tiers=[ids(task)], ratings=scored([ids(task)]))
    assert Ranking.objects.count() == 1


def test_a_late_submission_is_refused_once_the_task_went_to_someone_else(labeler, other_labeler):
    task = ranking_task(k=2, batch=BatchFactory(overlap=1))
    mine = assignment_for(task, labeler, minutes=-5)
    assignment_for(task, other_labeler)
    with pytest.raises(AssignmentUnavailable, match="given to another labeler"):
        ranking_submit(assignment=mine, tiers=[ids(task)], ratings=scored([ids(task)]))
    assert counts() == (0, 0, 0)


def test_a_ranking_needs_a_likert_score_for_every_output_unless_all_are_unusable(labeler):
    task = ranking_task(k=3)
    a, b, c = ids(task)
    assignment = assignment_for(task, labeler)
    with pytest.raises(InvalidRanking) as refused:
        ranking_submit(assignment=assignment, tiers=[[a], [b, c]], ratings={a: {"likert": 5}})
    assert refused.value.field == "likert" and f"{b}, {c}" in refused.value.message
    assert counts() == (0, 0, 0)
    ranking = ranking_submit(assignment=assignment, tiers=[[a], [b, c]], all_unusable=True)
    assert ranking.all_unusable and counts() == (1, 3, 2)
