"""Reads for the quality figures: rankings and ratings as plain rows, and the export filters.

`batches` everywhere: None for every ranking and evaluation batch, else batches or batch ids.
"""

from collections import defaultdict
from collections.abc import Iterable

from django.db.models import QuerySet

from ..models import Batch, Ranking, Rating
from .agreement import RankingRow, labeler_pairs, ranking_agreement, tier_map
from .ratings import RatingRow

RANKED_KINDS = (Batch.Kind.RANKING, Batch.Kind.EVALUATION)


def batch_ids(batches: Iterable | None) -> list[int] | None:
    if batches is None:
        return None
    return [b if isinstance(b, int) else b.pk for b in batches]


def _rankings(batches: Iterable | None) -> QuerySet[Ranking]:
    qs = Ranking.objects.filter(task__batch__kind__in=RANKED_KINDS)
    ids = batch_ids(batches)
    return qs if ids is None else qs.filter(task__batch_id__in=ids)


def ranking_rows(
    *, batches: Iterable | None = None, labelers: Iterable[int] | None = None
) -> list[RankingRow]:
    """Submitted rankings, oldest first. With `labelers`: only the tasks those labelers ranked, but
    every ranking of those tasks (agreement compares a labeler with everyone else)."""
    qs = _rankings(batches)
    if labelers is not None:
        qs = qs.filter(task__in=Ranking.objects.filter(labeler_id__in=list(labelers)).values("task"))
    fields = (
        "pk",
        "task_id",
        "task__batch_id",
        "task__prompt__category",
        "labeler_id",
        "tiers",
        "created_at",
        "seconds_spent",
        "task__gold_tiers",
    )
    return [
        RankingRow(
            pk,
            task,
            batch,
            category or "",
            labeler,
            tier_map(tiers),
            created,
            seconds,
            tier_map(gold) if gold else None,
        )
        for pk, task, batch, category, labeler, tiers, created, seconds, gold in qs.order_by(
            "pk"
        ).values_list(*fields)
    ]


def rating_rows(*, batches: Iterable | None = None) -> list[RatingRow]:
    qs = Rating.objects.filter(ranking__task__batch__kind__in=RANKED_KINDS)
    ids = batch_ids(batches)
    if ids is not None:
        qs = qs.filter(ranking__task__batch_id__in=ids)
    fields = (
        "ranking__task_id",
        "ranking__task__batch_id",
        "ranking__labeler_id",
        "completion_id",
        "likert",
        "flags",
    )
    return [
        RatingRow(t, b, u, c, likert, flags or {}) for t, b, u, c, likert, flags in qs.values_list(*fields)
    ]


def labelers_with_agreement_at_least(*, threshold: float, batches: Iterable | None = None) -> set[int]:
    """User ids of the labelers whose pairwise agreement with the others is at least `threshold` (0..1).
    A labeler who shares no task with another labeler has no agreement and is not included."""
    report = ranking_agreement(ranking_rows(batches=batches))
    return {u for u, est in report.by_labeler.items() if est.value is not None and est.value >= threshold}


def task_ids_with_agreement(*, min_agreement: float, batches: Iterable | None = None) -> set[int]:
    """Ids of the tasks whose labelers agree at least `min_agreement` (pairwise, pooled over the task's
    labeler pairs). Tasks ranked by one labeler, or whose rankings compare no pair, are not included."""
    agree: dict[int, int] = defaultdict(int)
    compared: dict[int, int] = defaultdict(int)
    for p in labeler_pairs(ranking_rows(batches=batches)):
        agree[p.task_id] += p.agree
        compared[p.task_id] += p.compared
    return {t for t, n in compared.items() if n and agree[t] / n >= min_agreement}
