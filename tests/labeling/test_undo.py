"""The undo window: a submission is pending (taken back, or written as labels once its window closes),
counts nowhere while pending, keeps its task under the overlap, and reopens as the very draft it was."""

from datetime import timedelta

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from core.errors import AssignmentUnavailable
from labeling.handout.next import assignment_next
from labeling.handout.work import assignment_save_draft, assignment_skip
from labeling.models import Assignment, Batch, Comparison, Demonstration, Prompt, Ranking
from labeling.quality.selectors import ranking_rows
from labeling.selectors.batches import batch_progress
from labeling.services.demonstrations import demonstration_submit
from labeling.services.prompt_writing import prompt_submit
from labeling.services.prompts import DuplicatePrompt
from labeling.services.rankings import ranking_submit
from labeling.services.tasks import prompt_task_create
from labeling.services.undo import UndoClosed, submission_undo, submissions_finalise
from tests.factories import BatchFactory, PromptFactory, ranking_task
from tests.factories import assignment_for as factory_assignment

pytestmark = pytest.mark.django_db

Status = Assignment.Status


@pytest.fixture(autouse=True)
def window(settings):
    settings.LABELING_UNDO_SECONDS = 30


def assignment_for(task, labeler):
    """The labeler's assignment of the task, on its batch (undo asks that the labeler still is)."""
    task.batch.labelers.add(labeler)
    return factory_assignment(task, labeler)


def ids(task):
    return list(task.task_completions.values_list("completion_id", flat=True))


def submit_ranking(assignment, tiers, **extra):
    ratings = {cid: {"likert": 5, "flags": {}} for tier in tiers for cid in tier}
    return ranking_submit(assignment=assignment, tiers=tiers, ratings=ratings, **extra)


def close_window(assignment):
    """The window of a pending submission ends now: what the clock does in 30 seconds."""
    Assignment.objects.filter(pk=assignment.pk).update(undo_until=timezone.now() - timedelta(seconds=1))


def test_a_submission_in_the_window_is_pending_and_counts_nowhere(labeler):
    task = ranking_task(k=3)
    a, b, c = ids(task)
    assignment = assignment_for(task, labeler)

    assert submit_ranking(assignment, [[a], [b], [c]]) is None

    assignment.refresh_from_db()
    assert assignment.status == Status.PENDING and assignment.undo_until > timezone.now()
    assert not Ranking.objects.exists() and not Comparison.objects.exists()
    assert ranking_rows(batches=[task.batch]) == []  # agreement and gold figures
    progress = batch_progress(batch=task.batch)
    assert progress.labels_submitted == 0 and progress.tasks_done == 0


def test_once_the_window_closes_the_label_counts(labeler):
    task = ranking_task(k=3)
    a, b, c = ids(task)
    assignment = assignment_for(task, labeler)
    submit_ranking(assignment, [[a], [b, c]], comment="b and c are alike", seconds_spent=12)

    assert submissions_finalise() == 0  # still open: nothing written
    close_window(assignment)
    assert submissions_finalise() == 1

    ranking = Ranking.objects.get(assignment=assignment)
    assert ranking.tiers == [[a], [b, c]] and ranking.comment == "b and c are alike"
    assert ranking.seconds_spent == 12
    assert set(Comparison.objects.values_list("better_id", "worse_id")) == {(a, b), (a, c)}
    assert {r.likert for r in ranking.ratings.all()} == {5}
    assignment.refresh_from_db()
    assert assignment.status == Status.SUBMITTED and assignment.submission == {}
    assert batch_progress(batch=task.batch).labels_submitted == 1
    with pytest.raises(UndoClosed, match="window of this submission has closed"):
        submission_undo(assignment_id=assignment.pk, labeler=labeler)


def test_undo_reopens_the_assignment_as_a_draft_holding_what_was_submitted(labeler):
    task = ranking_task(k=3)
    a, b, c = ids(task)
    assignment = assignment_for(task, labeler)
    ratings = {
        a: {"likert": 7, "flags": {"hallucination": True}},
        b: {"likert": 3},
        c: {"likert": 3, "flags": {"opinion": True, "sexual": False}},
    }
    ranking_submit(
        assignment=assignment, tiers=[[a], [b, c]], ratings=ratings, comment="close call", seconds_spent=40
    )

    reopened = submission_undo(assignment_id=assignment.pk, labeler=labeler)

    assert reopened.status == Status.ACTIVE and reopened.lease_expires_at > timezone.now()
    draft = Assignment.objects.get(pk=assignment.pk).draft
    assert draft["tiers"] == [[a], [b, c]]
    assert draft["likert"] == {str(a): "7", str(b): "3", str(c): "3"}
    assert draft["flags"] == {str(a): ["hallucination"], str(c): ["opinion"]}
    assert draft["comment"] == "close call" and draft["all_unusable"] is False and draft["seconds"] == 40
    event = AuditEvent.objects.get(action="submission.undone")
    assert event.actor == labeler and event.details["task"] == task.pk
    with pytest.raises(UndoClosed, match="already taken back"):
        submission_undo(assignment_id=assignment.pk, labeler=labeler)


def test_submitting_again_after_undo_stores_one_label_with_the_new_answer(labeler):
    task = ranking_task(k=2)
    a, b = ids(task)
    assignment = assignment_for(task, labeler)
    submit_ranking(assignment, [[a], [b]])
    submission_undo(assignment_id=assignment.pk, labeler=labeler)

    submit_ranking(assignment, [[b], [a]])
    close_window(assignment)
    submissions_finalise()

    assert list(Ranking.objects.values_list("tiers", flat=True)) == [[[b], [a]]]
    assert Assignment.objects.filter(task=task).count() == 1  # the same assignment, reopened


def test_only_the_labeler_may_undo_their_submission(labeler, other_labeler):
    task = ranking_task(k=2)
    a, b = ids(task)
    assignment = assignment_for(task, labeler)
    submit_ranking(assignment, [[a], [b]])
    with pytest.raises(Assignment.DoesNotExist):
        submission_undo(assignment_id=assignment.pk, labeler=other_labeler)
    assert Assignment.objects.get(pk=assignment.pk).status == Status.PENDING


def test_a_pending_submission_holds_its_task_under_the_overlap(labeler, other_labeler):
    batch = BatchFactory(overlap=1)
    batch.labelers.add(labeler, other_labeler)
    task = ranking_task(batch=batch, k=2)
    a, b = ids(task)
    mine = assignment_next(labeler=labeler, batch=batch)
    submit_ranking(mine, [[a], [b]])

    assert assignment_next(labeler=other_labeler, batch=batch) is None  # pending counts as taken
    assert assignment_next(labeler=labeler, batch=batch) is None  # never the same task twice

    submission_undo(assignment_id=mine.pk, labeler=labeler)
    assert assignment_next(labeler=other_labeler, batch=batch) is None  # a live lease now
    assert assignment_next(labeler=labeler, batch=batch).pk == mine.pk  # back to the reopened task

    # The reopened lease lapses: the task may go to someone else, and then the late submit is refused.
    Assignment.objects.filter(pk=mine.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=1))
    theirs = assignment_next(labeler=other_labeler, batch=batch)
    assert theirs is not None and theirs.task_id == task.pk
    with pytest.raises(AssignmentUnavailable, match="given to another labeler"):
        submit_ranking(mine, [[a], [b]])


def test_a_double_submit_in_the_window_holds_it_once(labeler):
    task = ranking_task(k=2)
    a, b = ids(task)
    assignment = assignment_for(task, labeler)
    submit_ranking(assignment, [[a], [b]])
    first = Assignment.objects.get(pk=assignment.pk).undo_until
    assert submit_ranking(assignment, [[b], [a]]) is None
    held = Assignment.objects.get(pk=assignment.pk)
    assert held.undo_until == first and held.submission["tiers"] == [[a], [b]]


def test_without_a_window_the_label_is_written_at_once(settings, labeler):
    settings.LABELING_UNDO_SECONDS = 0
    task = ranking_task(k=2)
    a, b = ids(task)
    ranking = submit_ranking(assignment_for(task, labeler), [[a], [b]])
    assert ranking is not None and ranking.assignment.status == Status.SUBMITTED


def test_a_demonstration_comes_back_as_its_text(labeler):
    batch = BatchFactory(kind=Batch.Kind.DEMONSTRATION)
    assignment = assignment_for(prompt_task_create(batch=batch, prompt=PromptFactory()), labeler)
    assert demonstration_submit(assignment=assignment, text="  A careful answer.  ", seconds_spent=9) is None
    assert not Demonstration.objects.exists()

    submission_undo(assignment_id=assignment.pk, labeler=labeler)
    draft = Assignment.objects.get(pk=assignment.pk).draft
    assert draft["text"] == "A careful answer." and draft["seconds"] == 9

    demonstration_submit(assignment=assignment, text="A better answer.", seconds_spent=20)
    close_window(assignment)
    submissions_finalise(labeler=labeler)
    assert list(Demonstration.objects.values_list("text", flat=True)) == ["A better answer."]


def test_a_pending_prompt_is_checked_at_once_and_created_when_the_window_closes(labeler):
    batch = BatchFactory(kind=Batch.Kind.PROMPT_WRITING)
    first, second = (assignment_for(prompt_task_create(batch=batch), labeler) for _ in range(2))
    existing = PromptFactory(text="Explain photosynthesis to a child.").pk

    with pytest.raises(DuplicatePrompt):  # the duplicate is refused at submit, window or not
        prompt_submit(
            assignment=first,
            text="explain  photosynthesis to a child.",
            category="generation",
            source="plain",
        )
    prompt_submit(assignment=first, text="Write a haiku about rain.", category="generation", source="plain")
    assert list(Prompt.objects.values_list("pk", flat=True)) == [existing]

    submission_undo(assignment_id=first.pk, labeler=labeler)
    draft = Assignment.objects.get(pk=first.pk).draft
    assert (draft["text"], draft["category"], draft["source"]) == (
        "Write a haiku about rain.",
        "generation",
        "plain",
    )

    prompt_submit(assignment=first, text="Write a haiku about snow.", category="generation", source="plain")
    prompt_submit(
        assignment=second, text="List three uses of copper.", category="brainstorming", source="plain"
    )
    close_window(first)
    assert submissions_finalise() == 1  # only the one whose window closed
    assert Prompt.objects.get(metadata__assignment=first.pk).text == "Write a haiku about snow."
    assert not Prompt.objects.filter(metadata__assignment=second.pk).exists()


def test_a_pending_submission_cannot_be_skipped_or_drafted_over(labeler):
    task = ranking_task(k=2)
    a, b = ids(task)
    assignment = assignment_for(task, labeler)
    submit_ranking(assignment, [[a], [b]])
    with pytest.raises(AssignmentUnavailable, match="already submitted"):
        assignment_skip(assignment=assignment, reason="changed my mind")
    with pytest.raises(AssignmentUnavailable):
        assignment_save_draft(assignment=assignment, draft={"tiers": []})
