"""Gold tasks, the writes: an admin marks a ranking task gold with a reference ranking, or unmarks it.
What gold tasks do to the hand-out and to a labeler's score is labeling.quality.gold (reads only)."""

from typing import Any

from django.db import transaction

from core.errors import ServiceError

from ..models import Task
from ..ranking_rules import validate_tiers


def gold_mark(*, task: Task, tiers: Any) -> Task:
    """Make `task` a gold task with the reference ranking `tiers` (best first, ties allowed)."""
    if task.k is None:
        raise ServiceError(
            f"task {task.pk} is not a ranking task; only ranking tasks can be gold.", field="task"
        )
    completion_ids = list(task.task_completions.values_list("completion_id", flat=True))
    clean = validate_tiers(tiers, completion_ids)
    if len(clean) < 2:
        raise ServiceError(
            "a reference ranking that ties every output teaches nothing; order at least two tiers.",
            field="tiers",
        )
    with transaction.atomic():
        task.is_gold, task.gold_tiers = True, clean
        task.save(update_fields=["is_gold", "gold_tiers"])
    return task


def gold_unmark(*, task: Task) -> Task:
    with transaction.atomic():
        task.is_gold, task.gold_tiers = False, None
        task.save(update_fields=["is_gold", "gold_tiers"])
    return task
