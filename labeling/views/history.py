"""A labeler's history of their own submissions, and one submission read back (read only)."""

from django.conf import settings
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from core.permissions import labeler_required, signed_in_user

from ..models import Assignment
from ..selectors.history import submission_of, submissions_of, undo_open
from ..services.undo import submissions_finalise

PER_PAGE = 25


@labeler_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    """My submissions, newest first. Those whose undo window closed are written first, so each shows as
    it now counts."""
    labeler = signed_in_user(request)
    submissions_finalise(labeler=labeler)
    page = Paginator(submissions_of(labeler=labeler), PER_PAGE).get_page(request.GET.get("page"))
    rows = [(a, undo_open(a)) for a in page.object_list]
    context = {"page": page, "rows": rows, "undo_seconds": settings.LABELING_UNDO_SECONDS}
    return render(request, "labeling/history.html", context)


@labeler_required
@require_GET
def submission(request: HttpRequest, pk: int) -> HttpResponse:
    """One of my submissions as I sent it. Anyone else's (or one not submitted) is a 404."""
    labeler = signed_in_user(request)
    submissions_finalise(labeler=labeler)
    try:
        shown = submission_of(labeler=labeler, pk=pk)
    except Assignment.DoesNotExist:
        raise Http404("No such submission of yours.") from None
    prompt = shown.assignment.task.prompt
    return render(
        request,
        "labeling/submission.html",
        {"shown": shown, "hide_prompt": prompt is not None and prompt.pii_flag},
    )
