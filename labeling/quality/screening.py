"""Screening: a qualification batch holds gold tasks only; a batch that requires it gives tasks only to
labelers who finished it with a gold accuracy at or above its pass mark, or whom a batch admin approved.
An admin may also block a labeler who passed. Passing is computed from the rankings, never stored.
The writes (an admin's decision, a batch's screening settings) are labeling.services.screening.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db.models import Q, QuerySet

from ..models import Assignment, Batch, LabelerQualification, Task
from .gold import FINISHED, gold_accuracy_by_labeler
from .intervals import Estimate
from .selectors import ranking_rows

if TYPE_CHECKING:
    from django.contrib.auth.models import User

Status = LabelerQualification.Status


@dataclass(frozen=True)
class QualificationResult:
    batch: Batch  # the qualification batch
    labeler_id: int
    gold_tasks: int
    done: int  # gold tasks the labeler submitted or skipped
    accuracy: Estimate
    decision: str | None  # an admin's: "approved", "blocked" or None

    @property
    def finished(self) -> bool:
        return self.gold_tasks > 0 and self.done >= self.gold_tasks

    @property
    def passed(self) -> bool:
        return (
            self.finished
            and self.accuracy.value is not None
            and self.accuracy.value >= self.batch.qualification_threshold
        )

    @property
    def state(self) -> str:
        """approved | blocked | passed | failed | in_progress | not_started"""
        if self.decision:
            return self.decision
        if self.finished:
            return "passed" if self.passed else "failed"
        return "in_progress" if self.done else "not_started"

    @property
    def state_label(self) -> str:
        return self.state.replace("_", " ")

    @property
    def may_work(self) -> bool:
        return self.state in ("approved", "passed")


def _results(
    batch: Batch, labeler_ids: list[int] | None, include: Iterable[int] = ()
) -> list[QualificationResult]:
    gold = Task.objects.filter(batch=batch, is_gold=True)
    gold_count = gold.count()
    finished = Assignment.objects.filter(task__in=gold, status__in=FINISHED)
    if labeler_ids is not None:
        finished = finished.filter(labeler_id__in=labeler_ids)
    done: dict[int, int] = {}
    for labeler_id in finished.values_list("labeler_id", flat=True):
        done[labeler_id] = done.get(labeler_id, 0) + 1
    rows = [r for r in ranking_rows(batches=[batch]) if labeler_ids is None or r.labeler_id in labeler_ids]
    accuracy = gold_accuracy_by_labeler(rows)
    decisions = dict(LabelerQualification.objects.filter(batch=batch).values_list("labeler_id", "status"))
    ids = (
        labeler_ids
        if labeler_ids is not None
        else sorted(set(done) | set(accuracy) | set(decisions) | set(include))
    )
    return [
        QualificationResult(
            batch, u, gold_count, done.get(u, 0), accuracy.get(u, Estimate.empty()), decisions.get(u)
        )
        for u in ids
    ]


def qualification_result(*, labeler: "User", batch: Batch) -> QualificationResult:
    return _results(batch, [labeler.pk])[0]


def qualification_results(*, batch: Batch, include: Iterable[int] = ()) -> list[QualificationResult]:
    """Every labeler who worked on the qualification batch or has a decision in it, and those `include`s."""
    return _results(batch, None, include)


def labeler_may_get_production_tasks(*, labeler: "User", batch: Batch) -> tuple[bool, str]:
    """(True, "") when the batch requires no screening or the labeler passed it (or was approved);
    else (False, a message naming the qualification batch and what to do).

    Hook for labeling.handout.next.assignment_next: hand out no new task when False."""
    screening = batch.requires_qualification
    if screening is None or batch.is_qualification:
        return True, ""
    result = qualification_result(labeler=labeler, batch=screening)
    state = result.state
    if result.may_work:
        return True, ""
    if state == "blocked":
        return False, (
            f"a batch admin has kept you out of batches that require the qualification batch "
            f"'{screening.name}'; ask a batch admin."
        )
    if result.gold_tasks == 0:
        return False, (
            f"batch '{batch.name}' requires the qualification batch '{screening.name}', which has no "
            f"gold tasks yet; ask a batch admin."
        )
    if state in ("not_started", "in_progress"):
        return False, (
            f"batch '{batch.name}' requires the qualification batch '{screening.name}': finish it "
            f"first ({result.done} of {result.gold_tasks} tasks done)."
        )
    score = "no comparable pairs" if result.accuracy.value is None else f"{result.accuracy.value:.0%}"
    return False, (
        f"your gold accuracy in the qualification batch '{screening.name}' is {score}, below its pass "
        f"mark of {screening.qualification_threshold:.0%}; a batch admin must approve you before you "
        f"get tasks in '{batch.name}'."
    )


def labelers_of(batch: Batch) -> QuerySet["User"]:
    """The labelers who may work on a batch (listed, or in one of its groups)."""
    return (
        get_user_model()
        .objects.filter(Q(labeling_batches=batch) | Q(groups__labeling_batches=batch))
        .distinct()
        .order_by("username")
    )
