"""The datasets page: snapshots with download links; researchers export, download and delete."""

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from ..errors import ServiceError
from ..models import DatasetSnapshot
from ..roles import is_researcher
from ..services.exports import snapshot_create, snapshot_delete, snapshot_download_name, snapshot_path
from .manage_access import reader_required, researcher_required
from .manage_forms import SnapshotForm, add_service_error


@reader_required
def datasets(request):
    form = SnapshotForm(request.POST or None)
    if request.method == "POST":
        if not is_researcher(request.user):
            raise PermissionDenied("Only researchers export datasets.")  # like every refused write
        if form.is_valid():
            try:
                snapshot = snapshot_create(
                    kind=form.cleaned_data["kind"],
                    format=form.cleaned_data["format"],
                    filters=form.filters(),
                    created_by=request.user,
                )
            except ServiceError as exc:
                add_service_error(form, exc)
            else:
                messages.success(
                    request,
                    f"Snapshot {snapshot.pk} ({snapshot.format}): {snapshot.row_count} rows exported.",
                )
                return redirect("manage:datasets")
    snapshots = list(DatasetSnapshot.objects.select_related("created_by").order_by("-pk")[:200])
    for snapshot in snapshots:
        snapshot.filter_items = [
            (key, ", ".join(map(str, value)) if isinstance(value, list) else value)
            for key, value in snapshot.filters.items()
        ]
    return render(
        request,
        "manage/datasets.html",
        {"form": form, "snapshots": snapshots, "may_export": is_researcher(request.user)},
        status=400 if form.errors else 200,
    )


@researcher_required
def download(request, pk: int):
    snapshot = get_object_or_404(DatasetSnapshot, pk=pk)
    path = snapshot_path(snapshot)
    if not path.exists():
        raise Http404("The snapshot's file is missing.")
    return FileResponse(
        path.open("rb"),
        as_attachment=True,
        filename=snapshot_download_name(snapshot),
        content_type="application/jsonl",
    )


@require_POST
@researcher_required
def delete(request, pk: int):
    snapshot = get_object_or_404(DatasetSnapshot, pk=pk)
    try:
        snapshot_delete(snapshot=snapshot, actor=request.user)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Snapshot {pk} deleted.")
    return redirect("manage:datasets")
