"""Screening: a qualification batch blocks labelers below its pass mark from the batches that require it,
until a batch admin approves them; an admin may also block a labeler who passed."""

import pytest

from core.errors import ServiceError
from labeling.quality.screening import labeler_may_get_production_tasks, qualification_result
from labeling.services.gold import gold_mark
from labeling.services.screening import batch_quality_update, qualification_decide
from tests.factories import BatchFactory

from .helpers import labelers, rank, task_in, tiers_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def screening(batch_admin):
    qualification = BatchFactory(name="Screening May")
    tasks = [task_in(qualification, k=3) for _ in range(2)]
    for t in tasks:
        gold_mark(task=t, tiers=tiers_of(t, "a b c"))
    batch_quality_update(batch=qualification, is_qualification=True, qualification_threshold=0.75)
    production = BatchFactory(name="Round 3 ranking")
    batch_quality_update(batch=production, requires_qualification=qualification)
    return qualification, production, tasks


def test_a_labeler_who_has_not_finished_is_blocked_with_the_batch_named(screening):
    qualification, production, tasks = screening
    [lab] = labelers(1)
    ok, message = labeler_may_get_production_tasks(labeler=lab, batch=production)
    assert not ok and "Screening May" in message and "0 of 2" in message
    rank(tasks[0], lab, "a b c")
    ok, message = labeler_may_get_production_tasks(labeler=lab, batch=production)
    assert not ok and "1 of 2" in message
    rank(tasks[1], lab, "a c b")  # 3 of 3 then 2 of 3 pairs right: 5/6 >= 0.75
    assert labeler_may_get_production_tasks(labeler=lab, batch=production) == (True, "")
    assert qualification_result(labeler=lab, batch=qualification).state == "passed"


def test_below_the_pass_mark_blocks_until_an_admin_approves(screening, batch_admin):
    qualification, production, tasks = screening
    [lab] = labelers(1)
    rank(tasks[0], lab, "c b a")
    rank(tasks[1], lab, "a b c")  # 0 of 3 and 3 of 3: 50% < 75%
    ok, message = labeler_may_get_production_tasks(labeler=lab, batch=production)
    assert not ok
    assert "Screening May" in message and "50%" in message and "75%" in message and "approve" in message
    decision = qualification_decide(
        labeler=lab, batch=qualification, status="approved", decided_by=batch_admin
    )
    assert decision.gold_accuracy == pytest.approx(0.5) and decision.decided_by == batch_admin
    assert labeler_may_get_production_tasks(labeler=lab, batch=production) == (True, "")
    qualification_decide(labeler=lab, batch=qualification, status=None)
    assert labeler_may_get_production_tasks(labeler=lab, batch=production)[0] is False


def test_an_admin_can_block_a_labeler_who_passed(screening, batch_admin):
    qualification, production, tasks = screening
    [lab] = labelers(1)
    for t in tasks:
        rank(t, lab, "a b c")
    qualification_decide(labeler=lab, batch=qualification, status="blocked", decided_by=batch_admin)
    ok, message = labeler_may_get_production_tasks(labeler=lab, batch=production)
    assert not ok and "Screening May" in message


def test_batches_without_screening_and_the_screening_itself_are_open(screening):
    qualification, _, _ = screening
    [lab] = labelers(1)
    assert labeler_may_get_production_tasks(labeler=lab, batch=BatchFactory()) == (True, "")
    assert labeler_may_get_production_tasks(labeler=lab, batch=qualification) == (True, "")


def test_settings_are_checked():
    batch = BatchFactory()
    plain = task_in(batch)
    with pytest.raises(ServiceError, match=f"tasks {plain.pk} a reference"):
        batch_quality_update(batch=batch, is_qualification=True)
    with pytest.raises(ServiceError, match="from 0 to 1"):
        batch_quality_update(batch=batch, gold_rate=1.5)
    with pytest.raises(ServiceError, match="not a qualification batch"):
        batch_quality_update(batch=BatchFactory(), requires_qualification=batch)
    batch_quality_update(batch=batch, gold_rate="0.1")
    batch.refresh_from_db()
    assert batch.gold_rate == 0.1


def test_a_qualification_batch_in_use_cannot_be_turned_off(screening):
    qualification, _, _ = screening
    with pytest.raises(ServiceError, match="Round 3 ranking"):
        batch_quality_update(batch=qualification, is_qualification=False)
