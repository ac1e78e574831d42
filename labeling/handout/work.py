"""Work in hand: skip a task (with a reason) or keep a draft of it server side."""

import json
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from core.errors import AssignmentUnavailable, ServiceError
from core.storable import unstorable

from ..models import Assignment
from .leases import assignment_check_still_mine
from .rules import FINISHED, HELD, Status

# Room for the longest text a task page takes (a 50,000-character demonstration, up to 4 bytes a character
# in UTF-8: labeling.services.demonstrations) with the rest of the page's state.
DRAFT_MAX_BYTES = 250_000
SKIP_REASON_MAX_CHARS = 2_000


def _locked(assignment: Assignment) -> Assignment:
    return Assignment.objects.select_for_update(of=("self",)).select_related("batch").get(pk=assignment.pk)


def assignment_skip(*, assignment: Assignment, reason: str) -> Assignment:
    """Give the task back with a reason; it will not be offered to this labeler again. Idempotent."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("say why you skip this task (a few words are enough).", field="reason")
    if len(reason) > SKIP_REASON_MAX_CHARS:
        raise ServiceError(f"keep the reason under {SKIP_REASON_MAX_CHARS} characters.", field="reason")
    with transaction.atomic():
        locked = _locked(assignment)
        if locked.status == Status.SKIPPED:
            return locked
        if locked.status in HELD:
            raise AssignmentUnavailable("this task was already submitted; it cannot be skipped.")
        locked.status = Status.SKIPPED
        locked.skip_reason = reason
        locked.finished_at = timezone.now()
        locked.draft = {}
        locked.save(update_fields=["status", "skip_reason", "finished_at", "draft"])
    return locked


def assignment_save_draft(*, assignment: Assignment, draft: object) -> Assignment:
    """Keep unsubmitted work server side (`draft`: what the page sent; anything but a JSON object is refused).
    Saving renews a live lease (the labeler is at work); on a lapsed lease it saves only if the task was not
    given away meanwhile."""
    if not isinstance(draft, dict):
        raise ServiceError("a draft must be a JSON object.", field="draft")
    if problem := unstorable(draft):
        raise ServiceError(f"the draft {problem}.", field="draft")
    if len(json.dumps(draft, ensure_ascii=False).encode()) > DRAFT_MAX_BYTES:
        raise ServiceError(f"the draft is larger than {DRAFT_MAX_BYTES // 1000} kB.", field="draft")
    with transaction.atomic():
        locked = _locked(assignment)
        if locked.status in FINISHED:
            raise AssignmentUnavailable(
                f"this task was already {locked.get_status_display().lower()}; the draft was not saved."
            )
        now = timezone.now()
        fields = ["draft"]
        if locked.status == Status.ACTIVE and locked.lease_expires_at >= now:
            locked.lease_expires_at = now + timedelta(minutes=locked.batch.lease_minutes)
            fields.append("lease_expires_at")
        else:
            assignment_check_still_mine(locked)
        locked.draft = draft
        locked.save(update_fields=fields)
    return locked
