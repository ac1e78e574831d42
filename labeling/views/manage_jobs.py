"""A job's page: an import's or an export's progress while it runs (it refreshes itself), then its
outcome: the counts and the batch, the snapshot, or the error with the file's bad lines."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from core.errors import ServiceError
from core.permissions import signed_in_user

from ..models import JobKind
from ..services.jobs import jobs_visible_to
from .manage_access import reader_required

# A refused start: the file too large, or the queue or the disk unavailable (a retry may cure those).
START_ERROR_STATUS = {"file_too_large": 413, "queue_unavailable": 503, "storage_unavailable": 503}


def start_error_status(exc: ServiceError) -> int:
    return START_ERROR_STATUS.get(exc.code, 400)


@reader_required
def job_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Batch admins see import jobs, researchers export jobs; any other job is not found."""
    job = get_object_or_404(jobs_visible_to(signed_in_user(request)), pk=pk)
    status = {
        "status": job.status,
        "progress_done": job.progress_done,
        "progress_total": job.progress_total,
        "message": job.message,
    }
    section = "datasets" if job.kind == JobKind.EXPORT else "imports"
    return render(request, "manage/job_detail.html", {"job": job, "status": status, "section": section})
