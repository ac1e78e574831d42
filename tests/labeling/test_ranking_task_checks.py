"""One set of checks for a ranking task's completions, whichever way it is made (one task, or a batch's many):
2 to 9, distinct, all answers to its prompt, in a ranking or evaluation batch; a refusal names `completions`
and stores nothing."""

import pytest
from django.db import transaction

from core.errors import ServiceError
from labeling.models import Batch, Task, TaskCompletion
from labeling.services.batches import batch_add_ranking_tasks
from labeling.services.tasks import ranking_task_create
from tests.factories import BatchFactory, CompletionFactory, PromptFactory

pytestmark = pytest.mark.django_db


def answers(prompt, n):
    return [CompletionFactory(prompt=prompt) for _ in range(n)]


def bad_groups():
    prompt, other = PromptFactory(), PromptFactory()
    one, *rest = answers(prompt, 10)
    return prompt, {
        "too few": ([one], "needs 2 to 9 completions, got 1"),
        "too many": ([one, *rest], "needs 2 to 9 completions, got 10"),
        "twice": ([one, one, rest[0]], "listed twice"),
        "two prompts": ([one, *answers(other, 1)], None),  # each path says it its own way, naming completions
    }


def test_one_task_refuses_each_bad_group_naming_completions_and_stores_nothing():
    prompt, groups = bad_groups()
    batch = BatchFactory()
    for name, (group, says) in groups.items():
        with pytest.raises(ServiceError, match=says or "another prompt") as refused:
            ranking_task_create(batch=batch, prompt=prompt, completions=group)
        assert refused.value.field == "completions", name
    assert not Task.objects.exists() and not TaskCompletion.objects.exists()


def test_a_batchs_tasks_refuse_each_bad_group_and_keep_none_of_the_batchs_tasks():
    prompt, groups = bad_groups()
    batch = BatchFactory()
    good = answers(prompt, 3)
    for name, (group, says) in groups.items():
        with pytest.raises(ServiceError, match=says or "same prompt") as refused, transaction.atomic():
            batch_add_ranking_tasks(batch=batch, groups=[good, group])
        assert refused.value.field == "completions", name
    assert not Task.objects.exists()
    assert batch_add_ranking_tasks(batch=batch, groups=[good]) == 1


@pytest.mark.parametrize("kind", [Batch.Kind.DEMONSTRATION, Batch.Kind.PROMPT_WRITING])
def test_ranking_tasks_need_a_ranking_batch(kind):
    prompt = PromptFactory()
    batch = BatchFactory(kind=kind)
    for make in (
        lambda: ranking_task_create(batch=batch, prompt=prompt, completions=answers(prompt, 2)),
        lambda: batch_add_ranking_tasks(batch=batch, groups=[answers(prompt, 2)]),
    ):
        with pytest.raises(ServiceError, match="ranking tasks need a ranking batch"):
            make()
    assert not Task.objects.exists()
