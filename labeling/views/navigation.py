"""Where the workspace goes after a submit or a skip, and what every task page is given."""

from typing import Any

from django import forms
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import redirect
from django.urls import reverse

from core.errors import AssignmentUnavailable
from core.permissions import signed_in_user

from ..forms import SkipForm
from ..handout.next import NotOnBatch, NotQualified, assignment_next
from ..models import Assignment, Batch
from .undo import undo_notice


def go_next(request: HttpRequest, batch: Batch) -> HttpResponseRedirect:
    """Open the labeler's next task in the batch at once, or say the batch is done for them."""
    try:
        assignment = assignment_next(labeler=signed_in_user(request), batch=batch)
    except NotOnBatch as exc:
        raise PermissionDenied(exc.message) from exc
    except NotQualified as exc:
        messages.error(request, exc.message[:1].upper() + exc.message[1:])
        return redirect("home")
    if assignment is not None:
        return redirect("workspace-assignment", pk=assignment.pk)
    batch.refresh_from_db(fields=["status"])
    if batch.status == Batch.Status.ACTIVE:
        messages.success(
            request, f"You are done with “{batch.name}”: nothing is left for you in this batch. Thank you!"
        )
    else:
        messages.info(
            request, f"“{batch.name}” is {batch.get_status_display().lower()}: it hands out no new tasks now."
        )
    return redirect("home")


def assignment_lost(request: HttpRequest, exc: AssignmentUnavailable) -> HttpResponseRedirect:
    messages.error(request, exc.message[:1].upper() + exc.message[1:])
    return redirect("home")


def posted_seconds(form: forms.Form) -> int:
    """The timer value a refused submission carried, so the page's timer goes on from there."""
    try:
        return max(0, int(form.data.get("seconds_spent", 0))) if form.is_bound else 0
    except (TypeError, ValueError):
        return 0


def task_context(assignment: Assignment, *, title: str, config: dict[str, Any]) -> dict[str, Any]:
    """The parts every task page shares: header, skip dialog, undo notice, and the data its script reads."""
    return {
        "assignment": assignment,
        "pending_undo": undo_notice(assignment.labeler),
        "batch": assignment.batch,
        "title": title,
        "skip_form": SkipForm(),
        "ws_config": {
            "draftUrl": reverse("workspace-draft", args=[assignment.pk]),
            "draft": assignment.draft or {},
            **config,
        },
    }
