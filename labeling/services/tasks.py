"""Creating tasks inside batches."""

from collections.abc import Sequence

from django.db import transaction

from core.errors import ServiceError

from ..models import Batch, Completion, Prompt, Task, TaskCompletion
from ..vocab import K_MAX, K_MIN


def ranking_task_create(*, batch: Batch, prompt: Prompt, completions: Sequence[Completion]) -> Task:
    """A ranking task over K (2..9) completions of one prompt."""
    if batch.kind not in (Batch.Kind.RANKING, Batch.Kind.EVALUATION):
        raise ServiceError(
            f"batch '{batch.name}' is a {batch.kind} batch; ranking tasks need a ranking batch."
        )
    k = len(completions)
    if not K_MIN <= k <= K_MAX:
        raise ServiceError(f"'completions' must hold {K_MIN} to {K_MAX} items, got {k}.", field="completions")
    if len({c.pk for c in completions}) != k:
        raise ServiceError("the same completion is listed twice.", field="completions")
    foreign = [c.pk for c in completions if c.prompt_id != prompt.pk]
    if foreign:
        raise ServiceError(f"completions {foreign} belong to another prompt.", field="completions")
    with transaction.atomic():
        task = Task.objects.create(batch=batch, prompt=prompt, k=k)
        TaskCompletion.objects.bulk_create(
            TaskCompletion(task=task, completion=c, prompt=prompt, position=i)
            for i, c in enumerate(completions)
        )
    return task


def prompt_task_create(*, batch: Batch, prompt: Prompt | None = None) -> Task:
    """A prompt-writing task (no prompt yet) or a demonstration task (write a response to `prompt`)."""
    if batch.kind == Batch.Kind.DEMONSTRATION and prompt is None:
        raise ServiceError("a demonstration task needs a prompt.", field="prompt")
    if batch.kind not in (Batch.Kind.DEMONSTRATION, Batch.Kind.PROMPT_WRITING):
        raise ServiceError(f"batch '{batch.name}' is a {batch.kind} batch.")
    return Task.objects.create(batch=batch, prompt=prompt)
