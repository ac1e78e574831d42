"""Reads for running batches: which prompts and completions a new batch gets, and a batch's progress."""

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, F, IntegerField, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from core.errors import ServiceError

from ..models import Assignment, Batch, Completion, Demonstration, Prompt, Ranking, Task
from ..vocab import Category, PromptSource, Split

BIGINT_MAX = 2**63 - 1


def _choices(value: str | Iterable[str] | None, key: str, allowed: Sequence[str]) -> list[str]:
    values = [value] if isinstance(value, str) else list(value or [])
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ServiceError(
            f"unknown {key} {', '.join(unknown)}; choose from: {', '.join(allowed)}.", field=key
        )
    return values


def prompts_select(
    *,
    split: str | Sequence[str] = (),
    category: str | Sequence[str] = (),
    source: str | Sequence[str] = (),
    created_after: datetime | None = None,
    created_before: datetime | None = None,
    limit: int | None = None,
) -> QuerySet[Prompt]:
    """Prompts for a new batch, oldest first."""
    prompts = Prompt.objects.order_by("pk")
    if splits := _choices(split, "split", Split.values):
        prompts = prompts.filter(split__in=splits)
    if categories := _choices(category, "category", Category.values):
        prompts = prompts.filter(category__in=categories)
    if sources := _choices(source, "source", PromptSource.values):
        prompts = prompts.filter(source__in=sources)
    if created_after is not None:
        prompts = prompts.filter(created_at__gte=created_after)
    if created_before is not None:
        prompts = prompts.filter(created_at__lt=created_before)
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
            raise ServiceError("'limit' must be a whole number, 1 or more.", field="limit")
        limit = min(limit, BIGINT_MAX)  # Postgres's LIMIT is a bigint; a larger one limits nothing
        prompts = prompts.filter(pk__in=list(prompts.values_list("pk", flat=True)[:limit]))
    return prompts


def completions_select(
    *,
    prompts: QuerySet[Prompt],
    model_version: Any = None,  # a training.models.ModelVersion (labeling does not import training)
    source_name: str = "",
) -> QuerySet[Completion]:
    """The completions of those prompts from one model version and/or external source, by prompt then age."""
    completions = Completion.objects.filter(prompt__in=prompts).order_by("prompt_id", "pk")
    if model_version is not None:
        completions = completions.filter(model_version=model_version)
    if source_name:
        completions = completions.filter(source_name=source_name)
    return completions


@dataclass(frozen=True)
class BatchProgress:
    tasks: int
    tasks_done: int  # tasks with as many submitted labels as the overlap asks
    labels_wanted: int  # tasks x overlap
    labels_submitted: int
    labels_in_flight: int  # live leases: handed out, not yet submitted, not expired
    labels_needed: int  # neither submitted nor in flight
    skipped: int

    @property
    def percent_done(self) -> int:
        return round(100 * self.tasks_done / self.tasks) if self.tasks else 0


def batch_progress(*, batch: Batch) -> BatchProgress:
    now = timezone.now()

    def count(condition: Q) -> Coalesce:
        rows = Assignment.objects.filter(condition, task=OuterRef("pk")).order_by().values("task")
        return Coalesce(
            Subquery(rows.annotate(n=Count("pk")).values("n"), output_field=IntegerField()), Value(0)
        )

    submitted = Q(status=Assignment.Status.SUBMITTED)
    live = Q(status=Assignment.Status.ACTIVE, lease_expires_at__gte=now)
    totals = (
        Task.objects.filter(batch=batch)
        .annotate(sub=count(submitted), live=count(live))
        .aggregate(
            tasks=Count("pk"),
            done=Count("pk", filter=Q(sub__gte=batch.overlap)),
            submitted=Coalesce(Sum("sub"), 0),
            in_flight=Coalesce(Sum("live"), 0),
            needed=Coalesce(Sum(Greatest(Value(batch.overlap) - F("sub") - F("live"), Value(0))), 0),
        )
    )
    skipped = Assignment.objects.filter(batch=batch, status=Assignment.Status.SKIPPED).count()
    return BatchProgress(
        tasks=totals["tasks"],
        tasks_done=totals["done"],
        labels_wanted=totals["tasks"] * batch.overlap,
        labels_submitted=totals["submitted"],
        labels_in_flight=totals["in_flight"],
        labels_needed=totals["needed"],
        skipped=skipped,
    )


@dataclass(frozen=True)
class LabelerStats:
    labeler_id: int
    username: str
    submitted: int
    skipped: int
    in_flight: int
    median_seconds: float | None  # median time per submitted task, as the labelers' pages measured it
    on_batch: bool  # still listed among the batch's labelers


def _seconds_by_labeler(batch: Batch) -> dict[int, list[float]]:
    rows: QuerySet[Any, tuple[Any, Any]]
    if batch.kind in (Batch.Kind.RANKING, Batch.Kind.EVALUATION):
        rows = Ranking.objects.filter(assignment__batch=batch).values_list("labeler_id", "seconds_spent")
    elif batch.kind == Batch.Kind.DEMONSTRATION:
        rows = Demonstration.objects.filter(assignment__batch=batch).values_list("author_id", "seconds_spent")
    else:
        rows = Prompt.objects.filter(metadata__batch=batch.pk).values_list(
            "author_id", "metadata__seconds_spent"
        )
    seconds: dict[int, list[float]] = {}
    for labeler_id, value in rows.iterator():
        if isinstance(value, int | float):
            seconds.setdefault(labeler_id, []).append(value)
    return seconds


def batch_labeler_stats(*, batch: Batch) -> list[LabelerStats]:
    """Everyone who worked on the batch or is listed on it, most submissions first."""
    now = timezone.now()
    rows = (
        Assignment.objects.filter(batch=batch)
        .values("labeler_id", "labeler__username")
        .annotate(
            submitted=Count("pk", filter=Q(status=Assignment.Status.SUBMITTED)),
            skipped=Count("pk", filter=Q(status=Assignment.Status.SKIPPED)),
            in_flight=Count("pk", filter=Q(status=Assignment.Status.ACTIVE, lease_expires_at__gte=now)),
        )
    )
    listed = dict(batch.labelers.values_list("pk", "username"))
    seconds = _seconds_by_labeler(batch)
    stats = {
        r["labeler_id"]: LabelerStats(
            r["labeler_id"],
            r["labeler__username"],
            r["submitted"],
            r["skipped"],
            r["in_flight"],
            statistics.median(seconds[r["labeler_id"]]) if seconds.get(r["labeler_id"]) else None,
            r["labeler_id"] in listed,
        )
        for r in rows
    }
    for pk, username in listed.items():
        stats.setdefault(pk, LabelerStats(pk, username, 0, 0, 0, None, True))
    return sorted(stats.values(), key=lambda s: (-s.submitted, s.username))
