"""What the labeler home (and the API) shows: the batches open to a labeler with what is left for them,
and their submitted work counted per batch kind."""

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from core.roles import is_labeler

from ..handout.rules import FINISHED, Status, live_q, open_tasks
from ..models import Assignment, Batch, Task
from ..quality.gold import non_gold_q
from ..quality.screening import labeler_may_get_production_tasks

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@dataclass(frozen=True)
class BatchSummary:
    batch: Batch
    tasks_left: int  # tasks this labeler could take now, their live one included
    done_by_me: int  # assignments this labeler submitted in the batch
    total_tasks: int
    live_assignment_id: int | None  # the task this labeler holds right now, if any
    blocked: str = ""  # why no new task is handed out to this labeler (a qualification batch), if so


def batches_open_for(*, user: "User") -> list[BatchSummary]:
    """Batches the user may work on that are active (or where they still hold a live assignment), with
    what is left for them. Non-labelers get an empty list."""
    if not is_labeler(user):
        return []
    now = timezone.now()
    live = dict(
        Assignment.objects.filter(labeler=user)
        .filter(live_q(now))
        .order_by("-pk")
        .values_list("batch_id", "pk")
    )
    member = Q(labelers=user) | Q(groups__in=user.groups.all())
    batches = (
        Batch.objects.filter(member)
        .filter(Q(status=Batch.Status.ACTIVE) | Q(pk__in=live.keys()))
        .distinct()
        .annotate(total_tasks=Count("tasks", distinct=True))
        .order_by("deadline", "pk")
    )
    summaries = []
    for batch in batches:
        blocked = ""
        if batch.status == Batch.Status.ACTIVE:
            allowed, why = labeler_may_get_production_tasks(labeler=user, batch=batch)
            blocked = "" if allowed else why
            finished = Assignment.objects.filter(task=OuterRef("pk"), labeler=user, status__in=FINISHED)
            left = open_tasks(batch=batch, labeler=user, now=now).count()
            if batch.is_qualification or batch.gold_rate > 0:
                gold = Task.objects.filter(batch=batch).exclude(non_gold_q()).exclude(Exists(finished))
                left += gold.count()
        else:
            left = 1 if batch.pk in live else 0
        if blocked and batch.pk not in live:
            left = 0
        done = Assignment.objects.filter(batch=batch, labeler=user, status=Status.SUBMITTED).count()
        summaries.append(BatchSummary(batch, left, done, batch.total_tasks, live.get(batch.pk), blocked))
    return summaries


def labeler_counts(*, user: "User") -> dict[str, dict[str, int]]:
    """Submitted work, today and in total, per batch kind: {"ranking": {"today": 3, "total": 40}, ...}
    plus an "all" entry. "Today" is the calendar day in the site's time zone."""
    start_of_day = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = (
        Assignment.objects.filter(labeler=user, status=Status.SUBMITTED)
        .values("batch__kind")
        .annotate(total=Count("pk"), today=Count("pk", filter=Q(finished_at__gte=start_of_day)))
    )
    counts = {kind: {"today": 0, "total": 0} for kind in Batch.Kind.values}
    for row in rows:
        counts[row["batch__kind"]] = {"today": row["today"], "total": row["total"]}
    counts["all"] = {
        "today": sum(c["today"] for c in counts.values()),
        "total": sum(c["total"] for c in counts.values()),
    }
    return counts
