"""Handing out tasks: overlap, leases, skips, drafts, who may work on a batch."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from core.errors import AssignmentUnavailable, ServiceError
from core.roles import ROLE_LABELER
from labeling.handout.next import NotOnBatch, assignment_next
from labeling.handout.rules import user_may_work_on
from labeling.handout.work import assignment_save_draft, assignment_skip
from labeling.models import Assignment, Batch
from labeling.selectors.home import batches_open_for, labeler_counts
from labeling.services.rankings import ranking_submit
from labeling.services.tasks import prompt_task_create
from tests.factories import BatchFactory, PromptFactory, UserFactory, ranking_task, scored

pytestmark = pytest.mark.django_db


def batch_with(labelers, *, tasks=3, overlap=1, **kwargs):
    batch = BatchFactory(overlap=overlap, **kwargs)
    batch.labelers.add(*labelers)
    for _ in range(tasks):
        ranking_task(batch=batch, k=4)
    return batch


def lapse(assignment):
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assignment.refresh_from_db()


def submit(assignment):
    ids = assignment.task.task_completions.values_list("completion_id", flat=True)
    return ranking_submit(assignment=assignment, tiers=[list(ids)], ratings=scored([list(ids)]))


def test_it_hands_out_a_task_with_a_lease_and_a_remembered_shuffled_order(labeler):
    batch = batch_with([labeler], tasks=1)
    batch.lease_minutes = 45
    batch.save()
    assignment = assignment_next(labeler=labeler, batch=batch)
    assert assignment.status == Assignment.Status.ACTIVE
    expected = timezone.now() + timedelta(minutes=45)
    assert abs((assignment.lease_expires_at - expected).total_seconds()) < 5
    completion_ids = set(assignment.task.task_completions.values_list("completion_id", flat=True))
    assert sorted(assignment.display_order) == sorted(completion_ids)
    assert assignment_next(labeler=labeler, batch=batch).display_order == assignment.display_order


def test_asking_again_while_holding_a_live_assignment_gives_the_same_one(labeler):
    batch = batch_with([labeler])
    first = assignment_next(labeler=labeler, batch=batch)
    assert assignment_next(labeler=labeler, batch=batch).pk == first.pk
    assert Assignment.objects.filter(labeler=labeler).count() == 1


def test_no_task_goes_past_its_overlap(labeler, other_labeler):
    third = UserFactory(username="lab3", roles=[ROLE_LABELER])
    batch = batch_with([labeler, other_labeler, third], tasks=1, overlap=2)
    assert assignment_next(labeler=labeler, batch=batch) is not None
    assert assignment_next(labeler=other_labeler, batch=batch) is not None
    assert assignment_next(labeler=third, batch=batch) is None


def test_an_expired_lease_frees_the_task_for_others(labeler, other_labeler):
    batch = batch_with([labeler, other_labeler], tasks=1)
    mine = assignment_next(labeler=labeler, batch=batch)
    assert assignment_next(labeler=other_labeler, batch=batch) is None
    lapse(mine)
    theirs = assignment_next(labeler=other_labeler, batch=batch)
    assert theirs.task_id == mine.task_id
    mine.refresh_from_db()
    assert mine.status == Assignment.Status.EXPIRED


def test_my_own_lapsed_lease_is_taken_up_again_with_its_draft(labeler):
    batch = batch_with([labeler], tasks=2)
    mine = assignment_next(labeler=labeler, batch=batch)
    assignment_save_draft(assignment=mine, draft={"comment": "half done"})
    lapse(mine)
    again = assignment_next(labeler=labeler, batch=batch)
    assert again.pk == mine.pk
    assert again.draft == {"comment": "half done"}
    assert again.lease_expires_at > timezone.now()


def test_submitted_and_skipped_tasks_are_not_offered_again(labeler):
    batch = batch_with([labeler], tasks=2, overlap=3)
    first = assignment_next(labeler=labeler, batch=batch)
    submit(first)
    second = assignment_next(labeler=labeler, batch=batch)
    assert second.task_id != first.task_id
    assignment_skip(assignment=second, reason="I cannot read this language")
    assert assignment_next(labeler=labeler, batch=batch) is None


def test_a_demonstration_of_my_own_prompt_is_not_offered(labeler):
    batch = BatchFactory(kind=Batch.Kind.DEMONSTRATION)
    batch.labelers.add(labeler)
    prompt_task_create(batch=batch, prompt=PromptFactory(author=labeler))
    assert assignment_next(labeler=labeler, batch=batch) is None
    other = prompt_task_create(batch=batch, prompt=PromptFactory())
    assert assignment_next(labeler=labeler, batch=batch).task_id == other.pk


@pytest.mark.parametrize("status", [Batch.Status.PAUSED, Batch.Status.CLOSED, Batch.Status.DRAFT])
def test_a_batch_that_is_not_active_hands_out_nothing_but_accepts_live_work(labeler, other_labeler, status):
    batch = batch_with([labeler, other_labeler], tasks=2)
    held = assignment_next(labeler=labeler, batch=batch)
    Batch.objects.filter(pk=batch.pk).update(status=status)
    batch.refresh_from_db()
    assert assignment_next(labeler=other_labeler, batch=batch) is None
    assert assignment_next(labeler=labeler, batch=batch).pk == held.pk  # still theirs to finish
    submit(held)
    assert assignment_next(labeler=labeler, batch=batch) is None


def test_outsiders_are_refused_with_a_service_error(labeler, other_labeler, researcher):
    batch = batch_with([labeler])
    with pytest.raises(NotOnBatch, match="not a labeler of batch"):
        assignment_next(labeler=other_labeler, batch=batch)
    batch.labelers.add(researcher)
    with pytest.raises(NotOnBatch, match="only labelers"):
        assignment_next(labeler=researcher, batch=batch)
    assert isinstance(NotOnBatch("x"), ServiceError)


def test_a_researcher_who_is_also_a_labeler_gets_tasks(researcher):
    researcher.groups.add(Group.objects.get(name=ROLE_LABELER))
    researcher = type(researcher).objects.get(pk=researcher.pk)  # drop the cached roles
    batch = batch_with([researcher])
    assert assignment_next(labeler=researcher, batch=batch) is not None


def test_membership_through_a_group(labeler, other_labeler):
    batch = batch_with([], tasks=1)
    team = Group.objects.create(name="team north")
    labeler.groups.add(team)
    batch.groups.add(team)
    assert user_may_work_on(user=labeler, batch=batch)
    assert not user_may_work_on(user=other_labeler, batch=batch)
    assert assignment_next(labeler=labeler, batch=batch) is not None


def test_skip_needs_a_reason_and_is_idempotent(labeler):
    batch = batch_with([labeler])
    assignment = assignment_next(labeler=labeler, batch=batch)
    with pytest.raises(ServiceError, match="say why"):
        assignment_skip(assignment=assignment, reason="  ")
    assignment_skip(assignment=assignment, reason="offensive prompt")
    again = assignment_skip(assignment=assignment, reason="twice")
    assert again.status == Assignment.Status.SKIPPED
    assert again.skip_reason == "offensive prompt"


def test_a_submitted_assignment_cannot_be_skipped(labeler):
    assignment = assignment_next(labeler=labeler, batch=batch_with([labeler]))
    submit(assignment)
    with pytest.raises(AssignmentUnavailable, match="already submitted"):
        assignment_skip(assignment=assignment, reason="changed my mind")


def test_a_draft_is_stored_and_renews_a_live_lease(labeler):
    batch = batch_with([labeler])
    assignment = assignment_next(labeler=labeler, batch=batch)
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() + timedelta(minutes=1))
    saved = assignment_save_draft(assignment=assignment, draft={"tiers": [[1]], "seconds": 12})
    assert Assignment.objects.get(pk=assignment.pk).draft == {"tiers": [[1]], "seconds": 12}
    assert saved.lease_expires_at > timezone.now() + timedelta(minutes=29)


def test_a_draft_on_a_task_given_away_is_refused(labeler, other_labeler):
    batch = batch_with([labeler, other_labeler], tasks=1)
    mine = assignment_next(labeler=labeler, batch=batch)
    lapse(mine)
    assignment_next(labeler=other_labeler, batch=batch)
    with pytest.raises(AssignmentUnavailable, match="given to another labeler"):
        assignment_save_draft(assignment=mine, draft={"x": 1})


def test_bad_drafts_are_refused(labeler):
    assignment = assignment_next(labeler=labeler, batch=batch_with([labeler]))
    with pytest.raises(ServiceError, match="JSON object"):
        assignment_save_draft(assignment=assignment, draft=["not", "a", "dict"])
    with pytest.raises(ServiceError, match="larger than"):
        assignment_save_draft(assignment=assignment, draft={"text": "x" * 300_000})


def test_batches_open_for_lists_my_batches_with_what_is_left(labeler, other_labeler, researcher):
    mine = batch_with([labeler, other_labeler], tasks=3, overlap=1, name="mine")
    batch_with([other_labeler], tasks=2, name="not mine")
    BatchFactory(status=Batch.Status.PAUSED, name="paused").labelers.add(labeler)
    held = assignment_next(labeler=other_labeler, batch=mine)
    [summary] = batches_open_for(user=labeler)
    assert (summary.batch, summary.tasks_left, summary.done_by_me, summary.total_tasks) == (mine, 2, 0, 3)
    assert summary.live_assignment_id is None
    submit(assignment_next(labeler=labeler, batch=mine))
    live = assignment_next(labeler=labeler, batch=mine)
    [summary] = batches_open_for(user=labeler)
    assert (summary.tasks_left, summary.done_by_me, summary.live_assignment_id) == (1, 1, live.pk)
    assert held.task_id not in {live.task_id}
    assert batches_open_for(user=researcher) == []


def test_labeler_counts_today_and_in_total(labeler):
    batch = batch_with([labeler], tasks=3)
    for _ in range(2):
        submit(assignment_next(labeler=labeler, batch=batch))
    earliest = Assignment.objects.filter(labeler=labeler).order_by("pk").first()
    Assignment.objects.filter(pk=earliest.pk).update(finished_at=timezone.now() - timedelta(days=3))
    counts = labeler_counts(user=labeler)
    assert counts["ranking"] == {"today": 1, "total": 2}
    assert counts["all"] == {"today": 1, "total": 2}
    assert counts["demonstration"] == {"today": 0, "total": 0}


def test_a_researcher_without_the_labeler_role_may_not_work(researcher):
    batch = batch_with([researcher])
    assert not user_may_work_on(user=researcher, batch=batch)
