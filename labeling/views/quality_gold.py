"""Gold tasks and screening for batch admins: a batch's gold rate and pass mark, each task's reference
ranking, and approving or blocking labelers after a qualification batch. Researchers may look."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from core.errors import ServiceError
from core.permissions import may_manage, require_manage, require_see_all, signed_in_user

from ..models import Batch, Task
from ..quality.forms import BatchQualityForm, ReferenceRankingForm
from ..quality.screening import labelers_of, qualification_results
from ..quality.selectors import RANKED_KINDS
from ..services.gold import gold_mark, gold_unmark
from ..services.screening import batch_quality_update, qualification_decide

TASKS_PER_PAGE = 20


@login_required
def gold_index(request: HttpRequest) -> HttpResponse:
    require_see_all(request.user)
    batches = (
        Batch.objects.filter(kind__in=RANKED_KINDS)
        .select_related("requires_qualification")
        .annotate(
            n_tasks=Count("tasks", distinct=True),
            n_gold=Count("tasks", filter=Q(tasks__is_gold=True), distinct=True),
        )
        .order_by("-pk")
    )
    return render(request, "quality/gold_index.html", {"batches": batches})


def _screening_rows(batch: Batch) -> list[dict]:
    """Everyone who may work on the qualification batch, or did, with their result."""
    members = {u.pk: u for u in labelers_of(batch)}
    results = qualification_results(batch=batch, include=members)
    users = {**get_user_model().objects.in_bulk([r.labeler_id for r in results]), **members}
    return sorted(
        ({"user": users[r.labeler_id], "result": r} for r in results), key=lambda row: row["user"].username
    )


@login_required
def gold_batch(request: HttpRequest, batch_id: int) -> HttpResponse:
    require_see_all(request.user)
    batch = get_object_or_404(
        Batch.objects.select_related("requires_qualification"), pk=batch_id, kind__in=RANKED_KINDS
    )
    tasks = (
        Task.objects.filter(batch=batch)
        .select_related("prompt")
        .prefetch_related("task_completions__completion")
        .order_by("-is_gold", "pk")
    )
    page = Paginator(tasks, TASKS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "quality/gold_batch.html",
        {
            "batch": batch,
            "settings_form": BatchQualityForm(batch=batch),
            "page": page,
            "task_forms": [(task, ReferenceRankingForm(task=task, prefix=f"t{task.pk}")) for task in page],
            "screening": _screening_rows(batch) if batch.is_qualification else None,
            "gated": batch.gated_batches.order_by("name") if batch.is_qualification else None,
            "may_manage": may_manage(request.user),
        },
    )


@login_required
@require_POST
def gold_settings(request: HttpRequest, batch_id: int) -> HttpResponse:
    require_manage(request.user)
    batch = get_object_or_404(Batch, pk=batch_id, kind__in=RANKED_KINDS)
    form = BatchQualityForm(request.POST, batch=batch)
    if not form.is_valid():
        messages.error(request, "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in form.errors.items()))
        return redirect("quality:gold_batch", batch_id=batch.pk)
    try:
        batch_quality_update(batch=batch, **form.cleaned_data)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, "Gold and screening settings saved.")
    return redirect("quality:gold_batch", batch_id=batch.pk)


@login_required
@require_POST
def gold_task(request: HttpRequest, task_id: int) -> HttpResponse:
    require_manage(request.user)
    task = get_object_or_404(Task.objects.select_related("batch"), pk=task_id)
    back = redirect(reverse("quality:gold_batch", args=[task.batch_id]) + f"#task-{task.pk}")
    if request.POST.get("action") == "unmark":
        gold_unmark(task=task)
        messages.success(request, f"Task {task.pk} is a normal task again.")
        return back
    form = ReferenceRankingForm(request.POST, task=task, prefix=f"t{task.pk}")
    if not form.is_valid():
        messages.error(request, f"Task {task.pk}: choose a place for every output.")
        return back
    try:
        gold_mark(task=task, tiers=form.tiers())
    except ServiceError as exc:
        messages.error(request, f"Task {task.pk}: {exc.message}")
    else:
        messages.success(request, f"Task {task.pk} is a gold task.")
    return back


# A qualification decision's form value, and what the page then says of the labeler.
DECISIONS = {"approved": "approved", "blocked": "blocked", "reset": "back to their score"}


@login_required
@require_POST
def qualification_decision(request: HttpRequest, batch_id: int, user_id: int) -> HttpResponse:
    require_manage(request.user)
    batch = get_object_or_404(Batch, pk=batch_id)
    labeler = get_object_or_404(get_user_model(), pk=user_id)
    decision = request.POST.get("decision", "")
    if decision not in DECISIONS:  # before, a missing one withdrew the admin's decision without a word
        messages.error(
            request, f"Choose a decision: {', '.join(DECISIONS)}; got {decision!r}. Nothing changed."
        )
        return redirect("quality:gold_batch", batch_id=batch.pk)
    try:
        qualification_decide(
            labeler=labeler,
            batch=batch,
            status=None if decision == "reset" else decision,
            decided_by=signed_in_user(request),
        )
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"{labeler.username}: {DECISIONS[decision]}.")
    return redirect("quality:gold_batch", batch_id=batch.pk)
