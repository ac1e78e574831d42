"""Leases: an assignment holds its task until its lease lapses. A lapsed lease frees the task for others
(expire_others marks it so during a hand-out); its holder may still submit late unless the task went to
enough others meanwhile (assignment_check_still_mine, under the task's lock)."""

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from core.errors import AssignmentUnavailable
from core.rows import update

from ..models import Assignment, Task
from .rules import FINISHED, Status, taken_q
from .statements import lock_task

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def expire_others(task: Task, labeler: "User", now: datetime) -> int:
    """Mark others' lapsed leases on this task expired; how many were. Rows locked right now (their holder
    is submitting or saving a draft) are left alone, as are rows that changed since they were counted."""
    lapsed = (
        Assignment.objects.select_for_update(skip_locked=True)
        .filter(task=task, status=Status.ACTIVE, lease_expires_at__lt=now)
        .exclude(labeler=labeler)
    )
    return Assignment.objects.filter(pk__in=lapsed.values("pk")).update(status=Status.EXPIRED)


def _others_taking(assignment: Assignment, now: datetime) -> QuerySet[Assignment]:
    """Other assignments of this assignment's task that count against its overlap (rules.taken_q)."""
    return (
        Assignment.objects.filter(task_id=assignment.task_id).exclude(pk=assignment.pk).filter(taken_q(now))
    )


def assignment_check_still_mine(assignment: Assignment) -> None:
    """For submit services, inside their transaction with the assignment row locked: a live lease is
    fine; a lapsed one is fine too unless the task has since been given to enough other labelers."""
    if assignment.status in FINISHED:
        raise AssignmentUnavailable(f"this task was already {assignment.get_status_display().lower()}.")
    now = timezone.now()
    if assignment.status == Status.ACTIVE and assignment.lease_expires_at >= now:
        return
    lock_task(assignment.task_id)  # no hand-out of this task while we count
    if _others_taking(assignment, now).count() >= assignment.batch.overlap:
        raise AssignmentUnavailable(
            "your lease on this task expired and it was given to another labeler; your work was not saved."
        )


def assignment_given_away(*, assignment: Assignment) -> bool:
    """Read only: has this lapsed assignment's task gone to enough other labelers that a submission
    would be refused? (The submit services decide again, under lock.)"""
    now = timezone.now()
    if assignment.status in FINISHED or (
        assignment.status == Status.ACTIVE and assignment.lease_expires_at >= now
    ):
        return False
    return _others_taking(assignment, now).count() >= assignment.batch.overlap


def assignment_mark_submitted(assignment: Assignment) -> None:
    """Submitted, its labels written: they count from now on. (A pending assignment keeps the time it
    was submitted at, and its undo_until: its labeler's history shows them.)"""
    if assignment.status != Status.PENDING:
        assignment.finished_at = timezone.now()
    assignment.status = Status.SUBMITTED
    assignment.draft = {}
    assignment.submission = {}
    update(assignment, ["status", "finished_at", "draft", "submission"])  # save(update_fields=...), cheaper


def assignment_hold_for_undo(assignment: Assignment, submission: dict) -> bool:
    """With the assignment row locked, after its submit service validated `submission` (JSON, the
    arguments its labels will be written from): hold it pending for LABELING_UNDO_SECONDS, and say so.
    False when the window is 0: the service writes the labels now. The task stays held (rules.HELD);
    services.undo writes the labels when the window closes, or takes the submission back within it."""
    seconds = settings.LABELING_UNDO_SECONDS
    if seconds <= 0:
        return False
    now = timezone.now()
    assignment.status = Status.PENDING
    assignment.finished_at = now
    assignment.undo_until = now + timedelta(seconds=seconds)
    assignment.draft = {}
    assignment.submission = submission
    update(assignment, ["status", "finished_at", "undo_until", "draft", "submission"])
    return True
