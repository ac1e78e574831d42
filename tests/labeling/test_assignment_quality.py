"""The hand-out with label quality plugged in: gold tasks and qualification batches (labeling.quality)."""

import pytest

from labeling.handout.next import NotQualified, assignment_next
from labeling.selectors.home import batches_open_for
from labeling.services.gold import gold_mark
from labeling.services.rankings import ranking_submit
from tests.factories import BatchFactory, ranking_task, scored

pytestmark = pytest.mark.django_db


def gold_task(batch):
    task = ranking_task(batch=batch, k=2)
    better, worse = task.task_completions.values_list("completion_id", flat=True)
    return gold_mark(task=task, tiers=[[better], [worse]])


def test_gold_tasks_go_to_every_labeler_whatever_the_overlap(labeler, other_labeler):
    batch = BatchFactory(is_qualification=True, overlap=1)
    batch.labelers.add(labeler, other_labeler)
    gold = gold_task(batch)
    assert assignment_next(labeler=labeler, batch=batch).task_id == gold.pk
    assert assignment_next(labeler=other_labeler, batch=batch).task_id == gold.pk


def test_the_normal_hand_out_never_gives_a_gold_task(labeler):
    batch = BatchFactory(gold_rate=0, overlap=1)
    batch.labelers.add(labeler)
    gold_task(batch)
    normal = ranking_task(batch=batch, k=2)
    first = assignment_next(labeler=labeler, batch=batch)
    assert first.task_id == normal.pk
    ranking_submit(
        assignment=first, tiers=[list(first.display_order)], ratings=scored([list(first.display_order)])
    )
    assert assignment_next(labeler=labeler, batch=batch) is None
    assert batches_open_for(user=labeler)[0].tasks_left == 0


def test_a_batch_gated_by_a_qualification_batch_refuses_labelers_who_have_not_passed(client, labeler):
    screening = BatchFactory(is_qualification=True, name="Screening")
    screening.labelers.add(labeler)
    gold_task(screening)
    gated = BatchFactory(requires_qualification=screening, name="Production")
    gated.labelers.add(labeler)
    ranking_task(batch=gated, k=2)
    with pytest.raises(NotQualified, match="Screening"):
        assignment_next(labeler=labeler, batch=gated)
    summary = next(s for s in batches_open_for(user=labeler) if s.batch == gated)
    assert summary.blocked and summary.tasks_left == 0
    client.force_login(labeler)
    assert "Screening" in client.get("/").content.decode()
    response = client.post(f"/batches/{gated.pk}/start/", follow=True)
    assert response.redirect_chain[-1][0] == "/" and "Screening" in response.content.decode()
