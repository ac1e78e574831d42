"""The labeler workspace: start a batch, open an assignment, skip it, keep its draft, look up a prompt."""

from collections.abc import Callable

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core import storable
from core.api.exceptions import body_too_large
from core.errors import AssignmentUnavailable, ServiceError
from core.permissions import labeler_required
from core.roles import is_batch_admin, is_labeler, is_researcher

from ..forms import SkipForm
from ..handout.leases import assignment_given_away
from ..handout.work import assignment_save_draft, assignment_skip
from ..models import Assignment, Batch, Prompt
from . import ranking, writing
from .access import may_see_prompt, my_assignment
from .navigation import assignment_lost, go_next

PAGES: dict[str, Callable[[HttpRequest, Assignment], HttpResponse]] = {  # by Batch.kind
    Batch.Kind.PROMPT_WRITING: writing.prompt_page,
    Batch.Kind.DEMONSTRATION: writing.demonstration_page,
    Batch.Kind.RANKING: ranking.ranking_page,
    Batch.Kind.EVALUATION: ranking.ranking_page,
}


@labeler_required
@require_POST
def start(request: HttpRequest, batch_id: int) -> HttpResponse:
    """The 'start' button of a batch on the home page: opens my next task in it."""
    return go_next(request, get_object_or_404(Batch, pk=batch_id))


@labeler_required
@require_http_methods(["GET", "POST"])
def assignment(request: HttpRequest, pk: int) -> HttpResponse:
    """Show the task page for this kind of batch (GET) or take its submission (POST)."""
    assignment = my_assignment(request, pk)
    if request.method == "GET" and assignment.status in (
        Assignment.Status.SUBMITTED,
        Assignment.Status.PENDING,
        Assignment.Status.SKIPPED,
    ):
        messages.info(request, f"That task is already {assignment.get_status_display().lower()}.")
        return redirect("home")
    if request.method == "GET" and assignment_given_away(assignment=assignment):
        messages.error(request, "Your lease on that task expired and it was given to another labeler.")
        return redirect("home")
    return PAGES[assignment.batch.kind](request, assignment)


@labeler_required
@require_POST
def skip(request: HttpRequest, pk: int) -> HttpResponse:
    assignment = my_assignment(request, pk)
    form = SkipForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Say why you skip this task (a few words are enough).")
        return redirect("workspace-assignment", pk=pk)
    try:
        assignment_skip(assignment=assignment, reason=form.cleaned_data["reason"])
    except AssignmentUnavailable as exc:
        return assignment_lost(request, exc)
    except ServiceError as exc:
        messages.error(request, exc.message)
        return redirect("workspace-assignment", pk=pk)
    messages.info(request, "Task skipped.")
    return go_next(request, assignment.batch)


@labeler_required
@require_POST
def draft(request: HttpRequest, pk: int) -> HttpResponse:
    """Keep the page's unsubmitted work: {"draft": {...}} in, {"saved_at", "lease_expires_at"} out. Every
    answer is JSON, for the page's script: a body past the server's limit too (413), not Django's page."""
    assignment = my_assignment(request, pk)
    try:
        payload = storable.loads((request.body or b"{}").decode())
    except RequestDataTooBig:
        return JsonResponse(body_too_large(), status=413)
    except ValueError as exc:  # a UnicodeDecodeError too
        return JsonResponse(
            {"detail": f"the request body is not JSON ({exc}).", "field": "", "code": "invalid"}, status=400
        )
    if not isinstance(payload, dict):
        return JsonResponse(
            {"detail": 'send {"draft": {...}}.', "field": "draft", "code": "invalid"}, status=400
        )
    try:
        # Whatever was sent: the service refuses a draft that is not an object (a 400 below).
        saved = assignment_save_draft(assignment=assignment, draft=payload.get("draft"))
    except AssignmentUnavailable as exc:
        return JsonResponse(exc.as_dict(), status=409)
    except ServiceError as exc:
        return JsonResponse(exc.as_dict(), status=400)
    return JsonResponse(
        {"saved_at": timezone.now().isoformat(), "lease_expires_at": saved.lease_expires_at.isoformat()}
    )


@login_required
@require_GET
def prompt_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A prompt, read only: one the labeler wrote or was handed. One the user may not see is a 404."""
    user = request.user
    if not (is_labeler(user) or is_batch_admin(user) or is_researcher(user)):
        raise PermissionDenied("No role gives you access to prompts.")
    prompt = get_object_or_404(Prompt, pk=pk)
    if not may_see_prompt(request, prompt):
        raise Http404("No such prompt.")
    hide_text = prompt.pii_flag and not (is_batch_admin(user) or is_researcher(user))
    return render(
        request, "labeling/workspace/prompt_detail.html", {"prompt": prompt, "hide_text": hide_text}
    )
