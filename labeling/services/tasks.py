"""Creating tasks inside batches."""

from collections.abc import Sequence

from django.db import transaction

from core.errors import ServiceError

from ..models import Batch, Completion, Prompt, Task, TaskCompletion
from .batches import ranking_batch_check, ranking_group_clean


def ranking_task_create(*, batch: Batch, prompt: Prompt, completions: Sequence[Completion]) -> Task:
    """A ranking task over K (2..9) completions of `prompt` (the checks of batches.batch_add_ranking_tasks)."""
    ranking_batch_check(batch)
    foreign = [c.pk for c in completions if c.prompt_id != prompt.pk]
    if foreign:
        raise ServiceError(f"completions {foreign} belong to another prompt.", field="completions")
    group = ranking_group_clean(completions)
    k = len(group)
    with transaction.atomic():
        task = Task.objects.create(batch=batch, prompt=prompt, k=k)
        TaskCompletion.objects.bulk_create(
            TaskCompletion(task=task, completion=c, prompt=prompt, position=i) for i, c in enumerate(group)
        )
    return task


def prompt_task_create(*, batch: Batch, prompt: Prompt | None = None) -> Task:
    """A prompt-writing task (no prompt yet) or a demonstration task (write a response to `prompt`)."""
    if batch.kind == Batch.Kind.DEMONSTRATION and prompt is None:
        raise ServiceError("a demonstration task needs a prompt.", field="prompt")
    if batch.kind not in (Batch.Kind.DEMONSTRATION, Batch.Kind.PROMPT_WRITING):
        raise ServiceError(f"batch '{batch.name}' is a {batch.kind} batch.")
    return Task.objects.create(batch=batch, prompt=prompt)
