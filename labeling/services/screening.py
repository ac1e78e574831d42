"""Screening, the writes: an admin's decision on a labeler after a qualification batch, and a batch's
gold rate and screening settings. What passing means is labeling.quality.screening (reads only)."""

from typing import TYPE_CHECKING, Any

from django.db import transaction

from core.errors import ServiceError

from ..models import Batch, LabelerQualification
from ..quality.screening import qualification_result

if TYPE_CHECKING:
    from django.contrib.auth.models import User

Status = LabelerQualification.Status


def qualification_decide(
    *, labeler: "User", batch: Batch, status: str | None, decided_by: "User | None" = None
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


def _fraction(value: Any, name: str) -> float:
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
    gold_rate: Any = _UNSET,
    is_qualification: Any = _UNSET,
    qualification_threshold: Any = _UNSET,
    requires_qualification: Batch | None | object = _UNSET,
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
    with transaction.atomic():
        for name, value in changes.items():
            setattr(batch, name, value)
        batch.save(update_fields=list(changes))
    return batch
