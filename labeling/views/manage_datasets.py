"""The datasets page: snapshots with download links; researchers export, download and delete."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.errors import ServiceError
from core.permissions import signed_in_user
from core.roles import is_researcher

from ..models import DatasetSnapshot, JobKind
from ..services.exports import snapshot_delete, snapshot_download_name, snapshot_open
from ..services.jobs import job_start_export, jobs_visible_to
from .manage_access import reader_required, researcher_required
from .manage_forms import SnapshotForm, add_service_error
from .manage_jobs import start_error_status


@reader_required
def datasets(request: HttpRequest) -> HttpResponse:
    """The snapshots; a researcher's export becomes a job, and the page sends them to its page."""
    user = signed_in_user(request)
    form, status = SnapshotForm(request.POST or None), 400
    if request.method == "POST":
        if not is_researcher(request.user):
            raise PermissionDenied("Only researchers export datasets.")  # like every refused write
        if form.is_valid():
            try:
                job = job_start_export(
                    kind=form.cleaned_data["kind"],
                    format=form.cleaned_data["format"],
                    filters=form.filters(),
                    created_by=user,
                )
            except ServiceError as exc:
                add_service_error(form, exc)
                status = start_error_status(exc)
            else:
                return redirect("manage:job", pk=job.pk)
    snapshots = list(DatasetSnapshot.objects.select_related("created_by").order_by("-pk")[:200])
    jobs = jobs_visible_to(user).filter(kind=JobKind.EXPORT).order_by("-pk")[:10]
    return render(
        request,
        "manage/datasets.html",
        {"form": form, "snapshots": snapshots, "may_export": is_researcher(request.user), "jobs": jobs},
        status=status if form.errors else 200,
    )


@researcher_required
def download(request: HttpRequest, pk: int) -> HttpResponseBase:
    snapshot = get_object_or_404(DatasetSnapshot, pk=pk)
    try:
        file = snapshot_open(snapshot)
    except ServiceError as exc:
        if exc.code == "storage_unavailable":
            return HttpResponse(exc.message, status=503, content_type="text/plain; charset=utf-8")
        raise Http404(exc.message) from None
    return FileResponse(
        file,
        as_attachment=True,
        filename=snapshot_download_name(snapshot),
        content_type="application/jsonl",
    )


@require_POST
@researcher_required
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    snapshot = get_object_or_404(DatasetSnapshot, pk=pk)
    try:
        snapshot_delete(snapshot=snapshot, actor=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Snapshot {pk} deleted.")
    return redirect("manage:datasets")
