"""Submitting demonstrations and prompts: stored once, refused when the task was given away, accepted late
otherwise, and accepted from live assignments of a paused batch."""

from datetime import timedelta

import pytest
from django.utils import timezone

from core.errors import AssignmentUnavailable, ServiceError
from labeling.handout.next import assignment_next
from labeling.handout.work import assignment_skip
from labeling.models import Assignment, Batch, Demonstration, Prompt
from labeling.services.demonstrations import demonstration_submit
from labeling.services.prompt_writing import prompt_submit
from labeling.services.prompts import DuplicatePrompt
from labeling.services.tasks import prompt_task_create
from labeling.vocab import Category, PromptSource
from tests.factories import BatchFactory, PromptFactory

pytestmark = pytest.mark.django_db


def demo_batch(*labelers, overlap=1):
    batch = BatchFactory(kind=Batch.Kind.DEMONSTRATION, overlap=overlap)
    batch.labelers.add(*labelers)
    prompt_task_create(batch=batch, prompt=PromptFactory(text="Explain tides to a child."))
    return batch


def writing_batch(*labelers, overlap=5):
    batch = BatchFactory(kind=Batch.Kind.PROMPT_WRITING, overlap=overlap)
    batch.labelers.add(*labelers)
    prompt_task_create(batch=batch)
    return batch


def lapse(assignment):
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=timezone.now() - timedelta(minutes=1))
    assignment.refresh_from_db()


def test_a_demonstration_is_stored_with_its_time_and_closes_the_assignment(labeler):
    assignment = assignment_next(labeler=labeler, batch=demo_batch(labeler))
    demo = demonstration_submit(assignment=assignment, text="  The moon pulls the sea.  ", seconds_spent=95)
    assert (demo.text, demo.seconds_spent, demo.author, demo.prompt_id) == (
        "The moon pulls the sea.",
        95,
        labeler,
        assignment.task.prompt_id,
    )
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.SUBMITTED and assignment.finished_at is not None


def test_submitting_a_demonstration_twice_stores_once(labeler):
    assignment = assignment_next(labeler=labeler, batch=demo_batch(labeler))
    first = demonstration_submit(assignment=assignment, text="one", seconds_spent=1)
    second = demonstration_submit(assignment=assignment, text="two", seconds_spent=2)
    assert first.pk == second.pk and Demonstration.objects.count() == 1


@pytest.mark.parametrize(
    "text, seconds, message",
    [("   ", 3, "empty"), ("fine", -1, "seconds_spent"), ("fine", "12", "seconds_spent")],
)
def test_a_bad_demonstration_writes_nothing(labeler, text, seconds, message):
    assignment = assignment_next(labeler=labeler, batch=demo_batch(labeler))
    with pytest.raises(ServiceError, match=message):
        demonstration_submit(assignment=assignment, text=text, seconds_spent=seconds)
    assert Demonstration.objects.count() == 0
    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.ACTIVE


def test_a_late_demonstration_is_refused_when_the_task_went_to_someone_else(labeler, other_labeler):
    batch = demo_batch(labeler, other_labeler)
    mine = assignment_next(labeler=labeler, batch=batch)
    lapse(mine)
    assert assignment_next(labeler=other_labeler, batch=batch) is not None
    with pytest.raises(AssignmentUnavailable, match="given to another labeler"):
        demonstration_submit(assignment=mine, text="late", seconds_spent=10)
    assert Demonstration.objects.count() == 0


def test_a_late_demonstration_is_accepted_when_nobody_took_the_task(labeler):
    mine = assignment_next(labeler=labeler, batch=demo_batch(labeler))
    lapse(mine)
    assert demonstration_submit(assignment=mine, text="late but fine", seconds_spent=4000).pk


def test_a_paused_batch_accepts_a_live_demonstration(labeler):
    batch = demo_batch(labeler)
    assignment = assignment_next(labeler=labeler, batch=batch)
    Batch.objects.filter(pk=batch.pk).update(status=Batch.Status.PAUSED)
    assert demonstration_submit(assignment=assignment, text="done anyway", seconds_spent=5).pk


def test_a_demonstration_on_a_skipped_assignment_is_refused(labeler):
    assignment = assignment_next(labeler=labeler, batch=demo_batch(labeler))
    assignment_skip(assignment=assignment, reason="unclear prompt")
    with pytest.raises(AssignmentUnavailable, match="already skipped"):
        demonstration_submit(assignment=assignment, text="x", seconds_spent=1)


def test_a_written_prompt_goes_through_prompt_hygiene(labeler):
    assignment = assignment_next(labeler=labeler, batch=writing_batch(labeler))
    prompt = prompt_submit(
        assignment=assignment,
        text="List three uses of a paperclip.",
        category=Category.BRAINSTORMING,
        source=PromptSource.FEW_SHOT,
        seconds_spent=30,
    )
    assert (prompt.author, prompt.origin_user, prompt.source, prompt.category) == (
        labeler,
        labeler.username,
        "few_shot",
        "brainstorming",
    )
    assert prompt.metadata["assignment"] == assignment.pk and prompt.metadata["seconds_spent"] == 30
    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.SUBMITTED


def test_submitting_a_prompt_twice_stores_once(labeler):
    assignment = assignment_next(labeler=labeler, batch=writing_batch(labeler))
    args = dict(assignment=assignment, category=Category.OPEN_QA, source=PromptSource.PLAIN)
    first = prompt_submit(text="What is a lighthouse for?", **args)
    second = prompt_submit(text="Something else entirely?", **args)
    assert first.pk == second.pk and Prompt.objects.count() == 1


def test_a_duplicate_prompt_is_refused_and_names_the_existing_one(labeler):
    existing = PromptFactory(text="Why is the sea salty?")
    assignment = assignment_next(labeler=labeler, batch=writing_batch(labeler))
    with pytest.raises(DuplicatePrompt) as caught:
        prompt_submit(
            assignment=assignment, text="  why is the SEA salty? ", category="open_qa", source="plain"
        )
    assert caught.value.existing == existing
    assert Prompt.objects.count() == 1
    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.ACTIVE


@pytest.mark.parametrize(
    "category, source, field", [("poetry", "plain", "category"), ("chat", "imported", "source")]
)
def test_a_prompt_with_a_bad_category_or_kind_is_refused(labeler, category, source, field):
    assignment = assignment_next(labeler=labeler, batch=writing_batch(labeler))
    with pytest.raises(ServiceError) as caught:
        prompt_submit(assignment=assignment, text="Hello there", category=category, source=source)
    assert caught.value.field == field
    assert Prompt.objects.count() == 0


def test_a_late_prompt_is_refused_when_the_task_went_to_someone_else(labeler, other_labeler):
    batch = writing_batch(labeler, other_labeler, overlap=1)
    mine = assignment_next(labeler=labeler, batch=batch)
    lapse(mine)
    assignment_next(labeler=other_labeler, batch=batch)
    with pytest.raises(AssignmentUnavailable):
        prompt_submit(assignment=mine, text="Too late?", category="chat", source="plain")
    assert Prompt.objects.count() == 0


def test_the_wrong_kind_of_batch_is_refused(labeler):
    assignment = assignment_next(labeler=labeler, batch=demo_batch(labeler))
    with pytest.raises(ServiceError, match="not a prompt-writing batch"):
        prompt_submit(assignment=assignment, text="Hi", category="chat", source="plain")
    with pytest.raises(ServiceError, match="not a demonstration batch"):
        demonstration_submit(
            assignment=assignment_next(labeler=labeler, batch=writing_batch(labeler)),
            text="x",
            seconds_spent=1,
        )
