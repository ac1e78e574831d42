"""Undo: the labeler takes back a submission while its undo window is open (labeling.services.undo)."""

import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.permissions import labeler_required, signed_in_user
from core.roles import is_labeler

from ..models import Assignment
from ..selectors.history import undo_open_for
from ..services.undo import UndoClosed, submission_undo, submissions_finalise

if TYPE_CHECKING:
    from django.contrib.auth.models import User


@dataclass(frozen=True)
class PendingUndo:
    """What the undo notice shows of a submission whose undo window is open."""

    assignment_id: int
    undo_until: datetime
    seconds_left: int  # whole seconds, at least 1: the page's script counts down from there


def undo_notice(user: "User") -> PendingUndo | None:
    """For the pages that show the undo notice after a submit (home and task pages,
    templates/labeling/workspace/_undo.html, as `pending_undo`): the labeler's newest submission whose
    window is still open (PendingUndo), or None. Their submissions whose window has closed are written first: the page
    after a submit is where their labels start to count, without waiting for the sweep, and the page's own
    counts include them. A view calls it, never a template: rendering stays read-only."""
    if not is_labeler(user):
        return None
    submissions_finalise(labeler=user)
    pending = undo_open_for(labeler=user)
    if pending is None or pending.undo_until is None:  # undo_open_for finds only windows still open
        return None
    seconds_left = max(1, math.ceil((pending.undo_until - timezone.now()).total_seconds()))
    return PendingUndo(assignment_id=pending.pk, undo_until=pending.undo_until, seconds_left=seconds_left)


@labeler_required
@require_POST
def undo(request: HttpRequest, pk: int) -> HttpResponse:
    """Reopen my pending submission as a draft and go back to it; past the window, say why and show my
    history. Someone else's assignment is a 404."""
    try:
        submission_undo(assignment_id=pk, labeler=signed_in_user(request))
    except Assignment.DoesNotExist:
        raise Http404("No such submission of yours.") from None
    except UndoClosed as exc:
        messages.error(request, exc.message[:1].upper() + exc.message[1:])
        return redirect("workspace-history")
    messages.success(request, "Submission taken back: it is a draft again. Change it and submit it again.")
    return redirect("workspace-assignment", pk=pk)
