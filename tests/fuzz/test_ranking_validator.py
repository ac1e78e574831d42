"""Hypothesis against ranking_submit: any tiers (duplicates, missing or foreign completion ids, wrong types),
any ratings (Likert, flags), seconds spent, comment and all_unusable.

A submission is either stored whole (the ranking, a rating per completion, a comparison per implied pair,
the assignment submitted) or refused with an InvalidRanking naming the field, and then nothing is written.
Each example runs in a savepoint rolled back after it, so every example submits the same live assignment."""

import pytest
from django.db import transaction
from hypothesis import event, given
from hypothesis import strategies as st

from core.errors import InvalidRanking
from labeling.models import Assignment, Comparison, Ranking, Rating
from labeling.ranking_rules import comparison_pairs
from labeling.services.rankings import ranking_submit
from labeling.vocab import FLAGS, LIKERT_MAX, LIKERT_MIN
from tests.factories import BatchFactory, CompletionFactory, assignment_for, ranking_task
from tests.fuzz.strategies import FUZZ, any_text, json_scalars, json_values, mostly, plain_text, spiced_text

pytestmark = pytest.mark.django_db

FIELDS = {"tiers", "ratings", "likert", "flags", "seconds_spent", "comment", "all_unusable"}


@pytest.fixture
def live_ranking(labeler):
    """A live assignment of a 4-completion ranking task, and the id of another task's completion."""
    batch = BatchFactory()
    batch.labelers.add(labeler)
    task = ranking_task(batch, k=4)
    ids = list(task.task_completions.values_list("completion_id", flat=True))
    return assignment_for(task, labeler), ids, CompletionFactory().pk


def _split(order: list[int], cuts: set[int]) -> list[list[int]]:
    bounds = [0, *sorted(cuts), len(order)]
    return [order[a:b] for a, b in zip(bounds, bounds[1:], strict=False)]


def tiers(ids: list[int], foreign: int):
    """Good tiers (every completion once, ties anywhere) and bad ones: any ids, any values."""
    good = st.permutations(ids).flatmap(
        lambda order: st.sets(st.integers(1, len(order) - 1)).map(lambda cuts: _split(list(order), cuts))
    )
    some_id = st.one_of(st.sampled_from(ids), st.just(foreign), st.integers(), json_scalars)
    return mostly(good, st.one_of(st.lists(st.lists(some_id, max_size=5), max_size=5), json_values))


def ratings(ids: list[int]):
    good_rating = st.fixed_dictionaries(
        {},
        optional={
            "likert": st.integers(LIKERT_MIN, LIKERT_MAX),
            "flags": st.dictionaries(st.sampled_from(list(FLAGS)), st.booleans(), max_size=3),
        },
    )
    any_rating = st.fixed_dictionaries(
        {},
        optional={
            "likert": st.one_of(st.integers(-2, 10), json_scalars),
            "flags": st.one_of(
                st.dictionaries(st.one_of(st.sampled_from(list(FLAGS)), any_text), json_scalars), json_values
            ),
        },
    )
    key = st.one_of(st.sampled_from(ids).map(str), st.integers(), any_text)
    scored = good_rating.filter(lambda rating: "likert" in rating)
    every_output_scored = st.fixed_dictionaries({cid: scored for cid in ids})  # what a stored ranking needs
    return mostly(
        every_output_scored,
        st.one_of(
            st.none(),
            st.dictionaries(st.sampled_from(ids), mostly(good_rating, any_rating), max_size=4),
            st.dictionaries(key, st.one_of(good_rating, json_values), max_size=4),
            json_values,
        ),
    )


submissions = {
    "seconds_spent": mostly(
        st.integers(0, 3600), st.one_of(st.integers(), st.integers(min_value=2**31), json_scalars)
    ),
    "comment": mostly(st.one_of(st.just(""), plain_text), st.one_of(spiced_text, any_text, json_values)),
    "all_unusable": mostly(st.booleans(), json_scalars),
}


def _counts() -> tuple[int, int, int]:
    return Ranking.objects.count(), Rating.objects.count(), Comparison.objects.count()


def _expected_ratings(ratings: dict | None, ids: list[int]) -> dict[int, tuple]:
    """(likert, flags) per completion: the last rating given for it (keys may be ids or their text)."""
    given = {cid: (None, {}) for cid in ids}
    for key, rating in (ratings or {}).items():
        given[int(key)] = (rating.get("likert"), dict(rating.get("flags") or {}))
    return given


@FUZZ
@given(data=st.data())
def test_a_ranking_is_stored_whole_or_refused_naming_the_field(data, live_ranking):
    assignment, ids, foreign = live_ranking
    submitted = {
        "tiers": data.draw(tiers(ids, foreign), label="tiers"),
        "ratings": data.draw(ratings(ids), label="ratings"),
        **{name: data.draw(values, label=name) for name, values in submissions.items()},
    }
    with transaction.atomic():
        before = _counts()
        try:
            ranking = ranking_submit(assignment=assignment, **submitted)
        except InvalidRanking as exc:
            event(f"refused: {exc.field}")
            assert exc.field in FIELDS and exc.message, exc
            assert _counts() == before, "a refused ranking wrote rows"
            assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.ACTIVE
        else:
            event("stored")
            ranking.refresh_from_db()
            assert ranking.tiers == submitted["tiers"]
            assert ranking.seconds_spent == submitted["seconds_spent"]
            assert ranking.comment == (submitted["comment"] or "")
            assert ranking.all_unusable is submitted["all_unusable"]
            likerts = [
                expected_likert
                for expected_likert, _ in _expected_ratings(submitted["ratings"], ids).values()
            ]
            assert ranking.all_unusable or None not in likerts, (
                "a ranking was stored without every Likert score"
            )
            tier_of = {cid: n for n, tier in enumerate(submitted["tiers"]) for cid in tier}
            stored = {r.completion_id: (r.tier, r.likert, r.flags) for r in ranking.ratings.all()}
            expected = _expected_ratings(submitted["ratings"], ids)
            assert stored == {cid: (tier_of[cid], *expected[cid]) for cid in ids}
            pairs = set(ranking.comparisons.values_list("better_id", "worse_id"))
            assert pairs == set(comparison_pairs(submitted["tiers"]))
            assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.SUBMITTED
        transaction.set_rollback(True)


# The crashes the property test found, one plain test each (DataError, UnicodeEncodeError), and the values
# it showed were stored as something else than given (a list as its repr, any truthy value as true).
@pytest.mark.parametrize(
    "extra, field",
    [
        ({"comment": "a\x00b"}, "comment"),
        ({"comment": "\ud800"}, "comment"),
        ({"comment": ["not", "text"]}, "comment"),
        ({"seconds_spent": 2**31}, "seconds_spent"),
        ({"all_unusable": "no"}, "all_unusable"),
    ],
)
def test_a_ranking_the_database_cannot_store_is_refused_naming_the_field(live_ranking, extra, field):
    assignment, ids, _ = live_ranking
    before = _counts()
    with pytest.raises(InvalidRanking) as caught:
        ranking_submit(assignment=assignment, tiers=[ids], **extra)
    assert caught.value.field == field and _counts() == before
    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.ACTIVE
