"""Undo: the labeler takes back a submission while its undo window is open (labeling.services.undo)."""

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from core.permissions import labeler_required

from ..models import Assignment
from ..services.undo import UndoClosed, submission_undo


@labeler_required
@require_POST
def undo(request, pk: int):
    """Reopen my pending submission as a draft and go back to it; past the window, say why and show my
    history. Someone else's assignment is a 404."""
    try:
        submission_undo(assignment_id=pk, labeler=request.user)
    except Assignment.DoesNotExist:
        raise Http404("No such submission of yours.") from None
    except UndoClosed as exc:
        messages.error(request, exc.message[:1].upper() + exc.message[1:])
        return redirect("workspace-history")
    messages.success(request, "Submission taken back: it is a draft again. Change it and submit it again.")
    return redirect("workspace-assignment", pk=pk)
