"""The undo window: for LABELING_UNDO_SECONDS after a submit its labeler may take the submission back.

Design: a submission inside its window is *pending* (Assignment.Status.PENDING): its submit service
validated it and left it on the assignment (Assignment.submission), and no label row exists yet. The
labels (a Ranking with its Ratings and Comparisons, a Demonstration, a Prompt) are written only when the
window has closed, by submissions_finalise. So the rule "a label counts once its window has closed" lives
here alone: every export, agreement figure, progress count and evaluation reads label rows or submitted
assignments, and a pending submission is neither. The hand-out counts a pending assignment against its
task's overlap like a submitted one (handout.rules.HELD), and undo turns it back into a live lease in the
same transaction, so the task never gets one labeler too many, nor the same labeler twice (the assignment
is reopened, not replaced).

Undo and finalising both take the assignment's row lock and decide under it (undo: still pending and the
window still open; finalising: still pending and the window closed), so exactly one of them wins a race.
Finalising runs as a periodic sweep (beat), for the labeler's own submissions on their next workspace page
and history, and for everything due before an export reads.
"""

import logging
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.db import transaction
from django.utils import timezone

from audit.services import Action, audit_record
from core.errors import ServiceError

from ..handout.leases import assignment_mark_submitted
from ..handout.rules import user_may_work_on
from ..models import Assignment, Batch
from .demonstrations import demonstration_write
from .prompt_writing import prompt_write
from .rankings import ranking_locked, ranking_write

if TYPE_CHECKING:
    from django.contrib.auth.models import User

log = logging.getLogger(__name__)

Status = Assignment.Status
FINALISE_CHUNK = 200  # pending submissions written per transaction


class UndoClosed(ServiceError):
    """The submission cannot be taken back: its window has closed, or it was already taken back."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="assignment", code="undo_closed")


def page_draft(kind: str, submission: dict, *, now: datetime) -> dict:
    """A pending submission in its task page's draft format (labeling/views/ranking.py draft_from_post,
    writing.py _draft_from_post), so the page opens holding exactly what was submitted. Stamped like the
    page's own saves (workspace/common.js: seconds on the timer, saved_at in ms), so it wins over the copy
    the browser kept from before the submit."""
    stamp = {"seconds": submission.get("seconds_spent", 0), "saved_at": int(now.timestamp() * 1000)}
    if kind in (Batch.Kind.RANKING, Batch.Kind.EVALUATION):
        ratings = submission.get("ratings", {})
        return stamp | {
            "likert": {cid: str(r["likert"]) for cid, r in ratings.items() if r.get("likert") is not None},
            "flags": {
                cid: [name for name, on in r.get("flags", {}).items() if on]
                for cid, r in ratings.items()
                if any(r.get("flags", {}).values())
            },
            "tiers": submission.get("tiers", []),
            "comment": submission.get("comment", ""),
            "all_unusable": bool(submission.get("all_unusable")),
        }
    fields = ("text", "category", "source") if kind == Batch.Kind.PROMPT_WRITING else ("text",)
    return stamp | {name: submission.get(name, "") for name in fields}


def submission_undo(*, assignment_id: int, labeler: "User") -> Assignment:
    """Take back the labeler's own pending submission: the assignment is live again under a fresh lease,
    its draft holding what was submitted. Raises Assignment.DoesNotExist when the labeler has no such
    assignment, UndoClosed when the window has closed (the label counts) or it was already undone."""
    with transaction.atomic():
        locked = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("batch")
            .get(pk=assignment_id, labeler=labeler)
        )
        now = timezone.now()
        if locked.status in (Status.ACTIVE, Status.EXPIRED):
            raise UndoClosed("this task is not submitted (or was already taken back): it is open to work on.")
        if locked.status != Status.PENDING or locked.undo_until is None or now >= locked.undo_until:
            raise UndoClosed("the undo window of this submission has closed: it counts as submitted.")
        if not user_may_work_on(user=labeler, batch=locked.batch):
            raise UndoClosed("you are no longer a labeler of this batch, so the submission stays.")
        kind = locked.batch.kind
        locked.draft = page_draft(kind, locked.submission, now=now)
        locked.status = Status.ACTIVE
        locked.lease_expires_at = now + timedelta(minutes=locked.batch.lease_minutes)
        locked.finished_at = None
        locked.undo_until = None
        locked.submission = {}
        locked.save(
            update_fields=["draft", "status", "lease_expires_at", "finished_at", "undo_until", "submission"]
        )
        audit_record(
            actor=labeler,
            action=Action.SUBMISSION_UNDONE,
            target=locked,
            details={"batch": locked.batch_id, "task": locked.task_id, "kind": kind},
        )
    return locked


def _write_labels(pending: Assignment) -> None:
    """Write the labels of a locked pending assignment (its batch, task and labeler loaded)."""
    kind = pending.batch.kind
    if kind in (Batch.Kind.RANKING, Batch.Kind.EVALUATION):
        locked, completion_ids = ranking_locked(pending)  # our own lock already: no wait
        ranking_write(locked, completion_ids, pending.submission)
    elif kind == Batch.Kind.DEMONSTRATION:
        demonstration_write(pending, pending.submission)
    else:
        try:
            with transaction.atomic():
                prompt_write(pending, pending.submission)
        except ServiceError as exc:
            # Checked at submit; only a prompt written meanwhile with the same opening (or the origin
            # user's cap reached) stops it now. The prompt set keeps one copy, so the work is done.
            log.warning("pending prompt of assignment %s not stored: %s", pending.pk, exc.message)


def submissions_finalise(*, labeler: "User | None" = None) -> int:
    """Write the labels of pending submissions whose undo window has closed (only `labeler`'s if given),
    and mark them submitted; how many. Rows locked right now (an undo or another sweep) are skipped."""
    done = 0
    while True:
        with transaction.atomic():
            due = (
                Assignment.objects.select_for_update(of=("self",), skip_locked=True)
                .select_related("batch", "task", "labeler")
                .filter(status=Status.PENDING, undo_until__lte=timezone.now())
                .order_by("undo_until")
            )
            if labeler is not None:
                due = due.filter(labeler=labeler)
            chunk = list(due[:FINALISE_CHUNK])
            for pending in chunk:
                _write_labels(pending)
                assignment_mark_submitted(pending)
        done += len(chunk)
        if len(chunk) < FINALISE_CHUNK:
            return done
