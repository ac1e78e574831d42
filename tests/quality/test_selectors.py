"""The export filters: labelers and tasks with agreement at least a threshold."""

import json

import pytest

from labeling.quality.selectors import labelers_with_agreement_at_least, task_ids_with_agreement
from labeling.services.exports import snapshot_create, snapshot_path
from tests.factories import BatchFactory

from .helpers import labelers, rank, task_in

pytestmark = pytest.mark.django_db


@pytest.fixture
def team():
    """Good1 and good2 agree on everything; sloppy reverses them. Per labeler: good1 and good2 agree on
    6 of 6 pairs with each other and 0 of 6 with sloppy on task 1 (6/12 = 0.5); on task 2 (no sloppy)
    6/6: 12/18 = 0.667. sloppy: 0/12. Task 1: 6/18 = 0.333, task 2: 1.0, task 3 (one labeler): none."""
    good1, good2, sloppy = labelers(3)
    batch = BatchFactory()
    t1, t2, t3 = task_in(batch), task_in(batch), task_in(batch)
    rank(t1, good1, "a b c d")
    rank(t1, good2, "a b c d")
    rank(t1, sloppy, "d c b a")
    rank(t2, good1, "b a d c")
    rank(t2, good2, "b a d c")
    rank(t3, good1, "a b c d")
    return (good1, good2, sloppy), (t1, t2, t3), batch


def test_labelers_with_agreement_at_least(team):
    (good1, good2, sloppy), _, batch = team
    assert labelers_with_agreement_at_least(threshold=0.6) == {good1.pk, good2.pk}
    assert labelers_with_agreement_at_least(threshold=0.7) == set()
    assert labelers_with_agreement_at_least(threshold=0.0) == {good1.pk, good2.pk, sloppy.pk}
    assert labelers_with_agreement_at_least(threshold=0.0, batches=[BatchFactory()]) == set()
    assert labelers_with_agreement_at_least(threshold=0.6, batches=[batch.pk]) == {good1.pk, good2.pk}


def test_task_ids_with_agreement(team):
    _, (t1, t2, t3), _ = team
    assert task_ids_with_agreement(min_agreement=0.7) == {t2.pk}
    assert task_ids_with_agreement(min_agreement=0.3) == {t1.pk, t2.pk}


def test_the_rm_pairs_export_keeps_only_tasks_whose_labelers_agree(team, monkeypatch, settings, tmp_path):
    """Through the exports' min_agreement filter."""
    settings.MEDIA_ROOT = str(tmp_path)
    _, (t1, t2, t3), _ = team
    snapshot = snapshot_create(kind="rm_pairs", filters={"min_agreement": 0.7})
    lines = [json.loads(line) for line in snapshot_path(snapshot).read_text().splitlines()]
    assert lines and {line["task_id"] for line in lines} == {t2.pk}


def test_the_rankings_export_keeps_only_labelers_who_agree_enough(team, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)
    everyone = snapshot_create(kind="rm_rankings", filters={})
    agreeing = snapshot_create(kind="rm_rankings", filters={"min_labeler_agreement": 0.6})
    nobody = snapshot_create(kind="rm_rankings", filters={"min_labeler_agreement": 0.7})
    assert (everyone.row_count, agreeing.row_count, nobody.row_count) == (
        6,
        5,
        0,
    )  # sloppy's one ranking goes
