"""Batch management: creating each kind with its tasks, running it, and what its page reports."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.utils import timezone

from core.errors import ServiceError
from core.roles import ROLE_LABELER
from labeling.handout.next import assignment_next
from labeling.models import Assignment, Batch
from labeling.selectors.batches import batch_labeler_stats, batch_progress
from labeling.services.batches import (
    batch_close,
    batch_create_from_completions,
    batch_create_from_prompts,
    batch_labelers_add,
    batch_labelers_remove,
    batch_pause,
    batch_resume,
)
from labeling.services.rankings import ranking_submit
from tests.factories import CompletionFactory, PromptFactory, UserFactory, scored

pytestmark = pytest.mark.django_db


def settings_for(kind, **extra):
    return {"name": f"a {kind} batch", "kind": kind, **extra}


def test_a_prompt_writing_batch_gets_empty_tasks(batch_admin):
    batch = batch_create_from_prompts(task_count=5, created_by=batch_admin, **settings_for("prompt_writing"))
    assert batch.tasks.count() == 5 and not batch.tasks.filter(prompt__isnull=False).exists()
    assert batch.created_by == batch_admin and batch.status == "active"


def test_a_demonstration_batch_from_prompts_chosen_by_split_and_category(labeler):
    chat = [PromptFactory(category="chat", origin_user="o1") for _ in range(3)]
    PromptFactory(category="generation", origin_user="o1")
    group = Group.objects.create(name="night shift")
    deadline = timezone.now() + timedelta(days=3)
    batch = batch_create_from_prompts(
        prompt_filters={"category": ["chat"], "split": chat[0].split, "limit": 2},
        labelers=[labeler],
        groups=[group],
        overlap=3,
        lease_minutes=15,
        deadline=deadline,
        instructions="Be <b>kind</b>.",
        **settings_for("demonstration"),
    )
    assert list(batch.tasks.order_by("pk").values_list("prompt_id", flat=True)) == [p.pk for p in chat[:2]]
    assert (batch.overlap, batch.lease_minutes, batch.deadline) == (3, 15, deadline)
    assert list(batch.labelers.all()) == [labeler] and list(batch.groups.all()) == [group]


def test_a_ranking_batch_from_a_models_completions():
    with_four, with_one = PromptFactory(), PromptFactory()
    wanted = [CompletionFactory(prompt=with_four, source_name="policy-a") for _ in range(4)]
    CompletionFactory(prompt=with_four, source_name="policy-b")
    CompletionFactory(prompt=with_one, source_name="policy-a")
    batch = batch_create_from_prompts(
        completion_filters={"source_name": "policy-a"}, **settings_for("ranking")
    )
    task = batch.tasks.get()
    assert task.k == 4 and [tc.completion_id for tc in task.task_completions.all()] == [c.pk for c in wanted]


def test_an_empty_selection_creates_nothing():
    with pytest.raises(ServiceError) as err:
        batch_create_from_prompts(prompt_filters={"category": "extract"}, **settings_for("demonstration"))
    assert err.value.field == "prompts" and Batch.objects.count() == 0


@pytest.mark.parametrize(
    "bad, field",
    [
        ({"overlap": 0}, "overlap"),
        ({"lease_minutes": 0}, "lease_minutes"),
        ({"name": " "}, "name"),
        ({"kind": "poetry"}, "kind"),
        ({"deadline": timezone.now() - timedelta(days=1)}, "deadline"),
    ],
)
def test_bad_settings_name_the_field(bad, field):
    with pytest.raises(ServiceError) as err:
        batch_create_from_prompts(task_count=1, **{**settings_for("prompt_writing"), **bad})
    assert err.value.field == field and Batch.objects.count() == 0


def test_only_labelers_can_be_put_on_a_batch(researcher):
    with pytest.raises(ServiceError) as err:
        batch_create_from_prompts(task_count=1, labelers=[researcher], **settings_for("prompt_writing"))
    assert err.value.field == "labelers" and "sci" in err.value.message


def test_the_loop_hook_makes_one_task_per_prompt_in_order():
    p1, p2 = PromptFactory(), PromptFactory()
    generated = [CompletionFactory(prompt=p) for p in (p1, p2, p1, p2, p1)]
    batch = batch_create_from_completions(completions=generated, name="round 3", round_number=3)
    assert batch.round_number == 3 and batch.kind == "ranking"
    assert sorted(batch.tasks.values_list("k", flat=True)) == [2, 3]
    assert list(batch.tasks.get(prompt=p1).task_completions.values_list("completion_id", flat=True)) == [
        generated[0].pk,
        generated[2].pk,
        generated[4].pk,
    ]


def test_pause_resume_close(labeler):
    batch = batch_create_from_prompts(task_count=2, labelers=[labeler], **settings_for("prompt_writing"))
    batch_pause(batch=batch)
    assert assignment_next(labeler=labeler, batch=batch) is None
    batch_resume(batch=batch)
    assert assignment_next(labeler=labeler, batch=batch) is not None
    batch = batch_close(batch=batch)
    assert batch.status == "closed"
    with pytest.raises(ServiceError) as err:
        batch_resume(batch=batch)
    assert err.value.code == "bad_state"


def test_removing_a_labeler_frees_their_tasks(labeler, other_labeler):
    batch = batch_create_from_prompts(task_count=1, labelers=[labeler], **settings_for("prompt_writing"))
    batch_labelers_add(batch=batch, users=[other_labeler])
    held = assignment_next(labeler=labeler, batch=batch)
    assert assignment_next(labeler=other_labeler, batch=batch) is None  # overlap 1: the one task is held
    assert batch_labelers_remove(batch=batch, users=[labeler]) == 1
    assert Assignment.objects.get(pk=held.pk).status == "expired"
    assert assignment_next(labeler=other_labeler, batch=batch) is not None


def test_progress_and_per_labeler_counts(labeler, other_labeler):
    first, second = PromptFactory(), PromptFactory()
    completions = [CompletionFactory(prompt=first) for _ in range(3)] + [
        CompletionFactory(prompt=second) for _ in range(2)
    ]
    third = UserFactory(username="lab3", roles=[ROLE_LABELER])
    batch = batch_create_from_completions(
        completions=completions, name="r", overlap=2, labelers=[labeler, other_labeler, third]
    )
    for user, seconds in ((labeler, 30), (other_labeler, 50)):
        a = assignment_next(labeler=user, batch=batch)  # both get the first task (overlap 2)
        ids = list(a.task.task_completions.values_list("completion_id", flat=True))
        ranking_submit(assignment=a, tiers=[ids], seconds_spent=seconds, ratings=scored([ids]))
    assignment_next(labeler=third, batch=batch)
    progress = batch_progress(batch=batch)
    assert (progress.tasks, progress.tasks_done, progress.labels_wanted) == (2, 1, 4)
    assert (progress.labels_submitted, progress.labels_in_flight, progress.labels_needed) == (2, 1, 1)
    stats = {s.username: s for s in batch_labeler_stats(batch=batch)}
    assert (stats["lab1"].submitted, stats["lab1"].median_seconds) == (1, 30)
    assert stats["lab2"].median_seconds == 50 and (stats["lab3"].submitted, stats["lab3"].in_flight) == (0, 1)
