"""Batch pages: the list, a new batch, and one batch's progress with its controls."""

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.errors import ServiceError
from core.permissions import signed_in_user
from core.roles import ROLE_LABELER, is_batch_admin, is_researcher

from ..models import Assignment, Batch
from ..selectors.batches import batch_labeler_stats, batch_progress
from ..services import batches as service
from .manage_access import batch_admin_required, reader_required
from .manage_forms import BatchCreateForm, BatchSettingsForm, LabelersForm, add_service_error


@reader_required
def home(request: HttpRequest) -> HttpResponse:
    return redirect(
        "manage:batches"
        if is_batch_admin(request.user) or not is_researcher(request.user)
        else "manage:datasets"
    )


@reader_required
def batch_list(request: HttpRequest) -> HttpResponse:
    status = request.GET.get("status") or ""
    batches = Batch.objects.annotate(
        task_count=Count("tasks", distinct=True),
        submitted=Count(
            "assignments", filter=Q(assignments__status=Assignment.Status.SUBMITTED), distinct=True
        ),
    ).order_by("-pk")
    if status in Batch.Status.values:
        batches = batches.filter(status=status)
    return render(
        request,
        "manage/batch_list.html",
        {
            "batches": batches[:200],
            "status": status,
            "statuses": Batch.Status.choices,
        },
    )


@batch_admin_required
def batch_new(request: HttpRequest) -> HttpResponse:
    form = BatchCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            batch = service.batch_create_from_prompts(
                created_by=signed_in_user(request), **form.service_arguments()
            )
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Batch '{batch.name}' created with {batch.tasks.count()} tasks.")
            return redirect("manage:batch", pk=batch.pk)
    return render(request, "manage/batch_new.html", {"form": form})


@reader_required
def batch_detail(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(Batch.objects.prefetch_related("labelers", "groups"), pk=pk)
    on_batch = batch.labelers.all()
    others = (
        get_user_model()
        .objects.filter(groups__name=ROLE_LABELER)
        .exclude(pk__in=on_batch)
        .order_by("username")
    )
    return render(
        request,
        "manage/batch_detail.html",
        {
            "batch": batch,
            "progress": batch_progress(batch=batch),
            "labeler_stats": batch_labeler_stats(batch=batch),
            "actions": [a for a, (sources, _) in service.TRANSITIONS.items() if batch.status in sources],
            "may_run": is_batch_admin(request.user),
            "add_form": LabelersForm(prefix="add", choices=others),
            "remove_form": LabelersForm(prefix="remove", choices=on_batch.order_by("username")),
            "settings_form": BatchSettingsForm(
                prefix="settings",
                initial={
                    "name": batch.name,
                    "overlap": batch.overlap,
                    "lease_minutes": batch.lease_minutes,
                    "deadline": batch.deadline,
                    "instructions": batch.instructions,
                },
            ),
        },
    )


@require_POST
@batch_admin_required
def batch_action(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(Batch, pk=pk)
    action = request.POST.get("action", "")
    try:
        batch = service.batch_transition(batch=batch, action=action, actor=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Batch '{batch.name}' is now {batch.get_status_display().lower()}.")
    return redirect("manage:batch", pk=pk)


@require_POST
@batch_admin_required
def batch_labelers(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(Batch, pk=pk)
    adding = request.POST.get("op") == "add"
    form = LabelersForm(request.POST, prefix="add" if adding else "remove")
    if not form.is_valid():
        messages.error(request, "Choose at least one labeler.")
        return redirect("manage:batch", pk=pk)
    users = list(form.cleaned_data["users"])
    names = ", ".join(u.get_username() for u in users)
    try:
        if adding:
            service.batch_labelers_add(batch=batch, users=users, actor=request.user)
            messages.success(request, f"Added {names}.")
        else:
            freed = service.batch_labelers_remove(batch=batch, users=users, actor=request.user)
            messages.success(request, f"Removed {names}; {freed} task(s) they held went back to the pool.")
    except ServiceError as exc:
        messages.error(request, exc.message)
    return redirect("manage:batch", pk=pk)


@require_POST
@batch_admin_required
def batch_settings(request: HttpRequest, pk: int) -> HttpResponse:
    batch = get_object_or_404(Batch, pk=pk)
    form = BatchSettingsForm(request.POST, prefix="settings")
    if form.is_valid():
        try:
            service.batch_update(batch=batch, **form.cleaned_data)
        except ServiceError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, "Settings saved.")
    else:
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(map(str, errors))}")
    return redirect("manage:batch", pk=pk)
