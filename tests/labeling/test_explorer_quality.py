"""The explorer's SQL forms of two quality rules agree with their Python forms on the same rows: a
task's agreement (labeling.quality.agreement, as the export's min_agreement filter uses it) and "too
fast" (labeling.quality.dashboard)."""

import random

import pytest
from django.urls import reverse

from core.roles import ROLE_LABELER, ROLE_RESEARCHER
from labeling.models import Ranking
from labeling.quality.agreement import labeler_pairs, pooled
from labeling.quality.dashboard import labeler_stats
from labeling.quality.selectors import ranking_rows, task_ids_with_agreement
from labeling.selectors.explorer_quality import ranking_agreement_column
from tests.factories import BatchFactory, UserFactory, ranking_task
from tests.labeling.explorer_world import rank

pytestmark = pytest.mark.django_db


def random_order(rng: random.Random, k: int) -> str:
    letters = list("ABCDEFGHI"[:k])
    rng.shuffle(letters)
    out = letters[0]
    for letter in letters[1:]:
        out += rng.choice(">>=") + letter  # ties about one time in three
    return out


@pytest.fixture
def rankings():
    rng = random.Random(15)
    labelers = [UserFactory(username=f"l{i}", roles=[ROLE_LABELER]) for i in range(4)]
    batches = [BatchFactory(), BatchFactory()]
    for n in range(14):
        k = rng.randint(2, 5)
        task = ranking_task(batches[n % 2], k=k)
        for labeler in rng.sample(labelers, rng.randint(1, 4)):
            rank(task, labeler, random_order(rng, k), seconds=rng.choice([3, 40, 60, 90, 120]))
    return labelers


def test_sql_task_agreement_equals_the_quality_rule(rankings):
    by_task: dict[int, list] = {}
    for pair in labeler_pairs(ranking_rows()):
        by_task.setdefault(pair.task_id, []).append(pair)
    python = {task: pooled(pairs).value for task, pairs in by_task.items()}
    sql = dict(Ranking.objects.annotate(a=ranking_agreement_column()).values_list("task_id", "a"))
    for task, value in sql.items():
        expected = python.get(task)
        assert (value is None) == (expected is None), task
        if value is not None:
            assert float(value) == pytest.approx(expected), task
    assert any(v is not None for v in sql.values()) and any(v is None for v in sql.values())


@pytest.mark.parametrize("threshold", [0, 50, 67, 100])
def test_the_agreement_filter_picks_the_tasks_the_export_filter_picks(client, rankings, threshold):
    client.force_login(UserFactory(username="rex", roles=[ROLE_RESEARCHER]))
    response = client.get(reverse("explore:rankings"), {"agreement_min": threshold})
    listed = {row.ranking.task_id for row in response.context["rows"]}
    assert listed == task_ids_with_agreement(min_agreement=threshold / 100)


def test_too_fast_rankings_are_the_dashboards_fast_ones(client, rankings):
    client.force_login(UserFactory(username="rex", roles=[ROLE_RESEARCHER]))
    response = client.get(reverse("explore:rankings"), {"too_fast": "yes"})
    fast_by_labeler: dict[int, int] = {}
    for row in response.context["rows"]:
        assert row.too_fast
        fast_by_labeler[row.ranking.labeler_id] = fast_by_labeler.get(row.ranking.labeler_id, 0) + 1
    dashboard = {s.labeler_id: s.fast for s in labeler_stats() if s.fast}
    assert fast_by_labeler == dashboard and dashboard
