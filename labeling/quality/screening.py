"""Screening: a qualification batch holds gold tasks only; a batch that requires it gives tasks only to
labelers who finished it with a gold accuracy at or above its pass mark, or whom a batch admin approved.
An admin may also block a labeler who passed. Passing is computed from the rankings, never stored.
"""

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q

from ..errors import ServiceError
from ..models import Assignment, Batch, LabelerQualification, Task
from .gold import FINISHED, gold_accuracy_by_labeler
from .intervals import Estimate
from .selectors import ranking_rows

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


def _results(batch: Batch, labeler_ids: list[int] | None, include=()) -> list[QualificationResult]:
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


def qualification_result(*, labeler, batch: Batch) -> QualificationResult:
    return _results(batch, [labeler.pk])[0]


def qualification_results(*, batch: Batch, include: Iterable[int] = ()) -> list[QualificationResult]:
    """Every labeler who worked on the qualification batch or has a decision in it, and those `include`s."""
    return _results(batch, None, include)


def labeler_may_get_production_tasks(*, labeler, batch: Batch) -> tuple[bool, str]:
    """(True, "") when the batch requires no screening or the labeler passed it (or was approved);
    else (False, a message naming the qualification batch and what to do).

    Hook for labeling.services.assignment.assignment_next: hand out no new task when False."""
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


def qualification_decide(
    *, labeler, batch: Batch, status: str | None, decided_by=None
) -> LabelerQualification | None:
    """An admin approves a labeler (lets them through despite the score), blocks them, or (status None)
    withdraws the decision so the score decides again."""
    if not batch.is_qualification:
        raise ServiceError(f"batch '{batch.name}' is not a qualification batch.", field="batch")
    if status is not None and status not in Status.values:
        raise ServiceError(f"unknown decision '{status}'; choose approved or blocked.", field="status")
    with transaction.atomic():
        if status is None:
            LabelerQualification.objects.filter(labeler=labeler, batch=batch).delete()
            return None
        accuracy = qualification_result(labeler=labeler, batch=batch).accuracy.value
        decision, _ = LabelerQualification.objects.update_or_create(
            labeler=labeler,
            batch=batch,
            defaults={"status": status, "gold_accuracy": accuracy, "decided_by": decided_by},
        )
    return decision


_UNSET = object()


def _fraction(value, name: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        number = -1.0
    if not 0.0 <= number <= 1.0:
        raise ServiceError(f"'{name}' must be a number from 0 to 1 (0.1 = 10%), got {value!r}.", field=name)
    return number


def batch_quality_update(
    *,
    batch: Batch,
    gold_rate=_UNSET,
    is_qualification=_UNSET,
    qualification_threshold=_UNSET,
    requires_qualification=_UNSET,
) -> Batch:
    """Set a batch's gold rate, whether it is a qualification batch, its pass mark, and the qualification
    batch it requires. Only the arguments given change; on an error nothing changes."""
    changes: dict = {}
    if gold_rate is not _UNSET:
        changes["gold_rate"] = _fraction(gold_rate, "gold_rate")
    if qualification_threshold is not _UNSET:
        changes["qualification_threshold"] = _fraction(qualification_threshold, "qualification_threshold")
    if is_qualification is not _UNSET:
        changes["is_qualification"] = bool(is_qualification)
    if requires_qualification is not _UNSET:
        changes["requires_qualification"] = requires_qualification
    qualifies = changes.get("is_qualification", batch.is_qualification)
    screening = changes.get("requires_qualification", batch.requires_qualification)
    if qualifies:
        if batch.kind not in (Batch.Kind.RANKING, Batch.Kind.EVALUATION):
            raise ServiceError("a qualification batch must be a ranking batch.", field="is_qualification")
        plain = list(batch.tasks.filter(is_gold=False).values_list("pk", flat=True)[:10])
        if plain:
            raise ServiceError(
                f"a qualification batch holds gold tasks only; give tasks {', '.join(map(str, plain))} "
                "a reference ranking first.",
                field="is_qualification",
            )
        if screening is not None:
            raise ServiceError(
                "a qualification batch cannot itself require a qualification batch.",
                field="requires_qualification",
            )
    elif batch.is_qualification and batch.gated_batches.exists():
        names = ", ".join(f"'{b.name}'" for b in batch.gated_batches.all()[:5])
        raise ServiceError(
            f"batches {names} require this qualification batch; change them first.", field="is_qualification"
        )
    if screening is not None and (screening.pk == batch.pk or not screening.is_qualification):
        raise ServiceError(
            f"batch '{screening.name}' is not a qualification batch.", field="requires_qualification"
        )
    for name, value in changes.items():
        setattr(batch, name, value)
    batch.save(update_fields=list(changes))
    return batch


def labelers_of(batch: Batch):
    """The labelers who may work on a batch (listed, or in one of its groups)."""
    return (
        get_user_model()
        .objects.filter(Q(labeling_batches=batch) | Q(groups__labeling_batches=batch))
        .distinct()
        .order_by("username")
    )
