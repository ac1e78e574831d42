"""Each database rule rejects a bad row at the database, not only in forms."""

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from labeling.models import (
    Assignment,
    Comparison,
    Completion,
    DatasetSnapshot,
    Prompt,
    Ranking,
    Rating,
    Task,
    TaskCompletion,
)
from labeling.services.rankings import ranking_submit
from tests.factories import (
    BatchFactory,
    CompletionFactory,
    PromptFactory,
    UserFactory,
    assignment_for,
    ranking_task,
    scored,
)

pytestmark = pytest.mark.django_db


def rejected(fn):
    with pytest.raises(IntegrityError), transaction.atomic():
        fn()


def test_likert_below_1_is_rejected(labeler):
    task = ranking_task(k=2)
    ranking = ranking_submit(
        assignment=assignment_for(task, labeler),
        tiers=[[c.pk] for c in task.completions.all()],
        ratings=scored([[c.pk] for c in task.completions.all()]),
    )
    rating = Rating.objects.filter(ranking=ranking).first()
    rejected(lambda: Rating.objects.filter(pk=rating.pk).update(likert=0))


def test_likert_above_7_is_rejected(labeler):
    task = ranking_task(k=2)
    ranking = ranking_submit(
        assignment=assignment_for(task, labeler),
        tiers=[[c.pk] for c in task.completions.all()],
        ratings=scored([[c.pk] for c in task.completions.all()]),
    )
    rating = Rating.objects.filter(ranking=ranking).first()
    rejected(lambda: Rating.objects.filter(pk=rating.pk).update(likert=8))
    Rating.objects.filter(pk=rating.pk).update(likert=7)  # the bounds themselves are fine


def test_k_of_1_is_rejected():
    prompt = PromptFactory()
    rejected(lambda: Task.objects.create(batch=BatchFactory(), prompt=prompt, k=1))


def test_k_of_10_is_rejected():
    prompt = PromptFactory()
    rejected(lambda: Task.objects.create(batch=BatchFactory(), prompt=prompt, k=10))


def test_a_tenth_completion_position_is_rejected():
    task = ranking_task(k=9)
    extra = CompletionFactory(prompt=task.prompt)
    rejected(
        lambda: TaskCompletion.objects.create(task=task, completion=extra, prompt=task.prompt, position=9)
    )


def test_one_assignment_per_task_and_labeler(labeler):
    task = ranking_task()
    assignment_for(task, labeler)
    rejected(lambda: assignment_for(task, labeler))


def test_one_ranking_per_assignment(labeler):
    task = ranking_task(k=2)
    assignment = assignment_for(task, labeler)
    ranking = ranking_submit(
        assignment=assignment,
        tiers=[[c.pk] for c in task.completions.all()],
        ratings=scored([[c.pk] for c in task.completions.all()]),
    )
    rejected(
        lambda: Ranking.objects.create(assignment=assignment, task=task, labeler=labeler, tiers=ranking.tiers)
    )


def test_comparison_never_pairs_a_completion_with_itself(labeler):
    task = ranking_task(k=2)
    ranking = ranking_submit(
        assignment=assignment_for(task, labeler),
        tiers=[[c.pk] for c in task.completions.all()],
        ratings=scored([[c.pk] for c in task.completions.all()]),
    )
    c = task.completions.first()
    rejected(
        lambda: Comparison.objects.create(
            ranking=ranking, batch=task.batch, prompt=task.prompt, better=c, worse=c, labeler=labeler
        )
    )


def test_completion_of_another_prompt_cannot_join_a_task():
    task = ranking_task(k=2)
    stranger = CompletionFactory()  # belongs to a different prompt
    rejected(
        lambda: TaskCompletion.objects.create(task=task, completion=stranger, prompt=task.prompt, position=2)
    )
    # Claiming the stranger's prompt instead breaks the task side of the rule.
    rejected(
        lambda: TaskCompletion.objects.create(
            task=task, completion=stranger, prompt=stranger.prompt, position=2
        )
    )


def test_dataset_snapshot_rows_are_never_updated():
    snap = DatasetSnapshot.objects.create(kind="sft", row_count=3, sha256="0" * 64, file="exports/a.jsonl")
    rejected(lambda: DatasetSnapshot.objects.filter(pk=snap.pk).update(row_count=4))
    with pytest.raises(ValueError, match="immutable"):
        snap.save()
    snap.refresh_from_db()
    assert snap.row_count == 3


def test_deleting_the_user_who_exported_a_snapshot_keeps_the_snapshot():
    researcher, other = UserFactory(), UserFactory()
    snap = DatasetSnapshot.objects.create(
        kind="sft", row_count=3, sha256="0" * 64, file="exports/b.jsonl", created_by=researcher
    )
    researcher.delete()  # on_delete=SET_NULL: the one update the trigger lets through
    snap.refresh_from_db()
    assert (snap.created_by, snap.row_count) == (None, 3)
    # Clearing the creator together with another column, or naming another creator, is still refused.
    rejected(lambda: DatasetSnapshot.objects.filter(pk=snap.pk).update(created_by=None, row_count=9))
    rejected(lambda: DatasetSnapshot.objects.filter(pk=snap.pk).update(created_by=other))


def test_prompt_category_must_be_a_known_use_case():
    rejected(lambda: PromptFactory(category="poetry"))


def test_prompt_source_must_be_known():
    rejected(lambda: PromptFactory(source="scraped"))


def test_duplicate_prompt_dedup_key_is_rejected():
    p = PromptFactory()
    rejected(
        lambda: Prompt.objects.create(
            text="other",
            category=p.category,
            source=p.source,
            origin_user="x",
            split="train",
            dedup_key=p.dedup_key,
        )
    )


def test_completion_needs_a_model_version_or_a_source_name():
    rejected(lambda: Completion.objects.create(prompt=PromptFactory(), text="t", source_name=""))


def test_batch_overlap_must_be_positive():
    rejected(lambda: BatchFactory(overlap=0))


def test_assignment_status_must_be_known(labeler):
    task = ranking_task()
    rejected(
        lambda: Assignment.objects.create(
            task=task, batch=task.batch, labeler=labeler, status="lost", lease_expires_at=timezone.now()
        )
    )
