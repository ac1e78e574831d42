"""The imports page: prompts (JSONL, CSV) and completions (JSONL) files, for batch admins. An upload
becomes a job that a worker runs (labeling/services/jobs.py); the page sends its user to the job's page."""

from django.conf import settings
from django.shortcuts import redirect, render

from core.errors import ServiceError

from ..services.jobs import (
    IMPORT_KINDS,
    job_start_completion_import,
    job_start_prompt_import,
    jobs_visible_to,
)
from .manage_access import batch_admin_required
from .manage_forms import CompletionImportForm, PromptImportForm, add_service_error
from .manage_jobs import start_error_status


def _page(request, prompt_form=None, completion_form=None, status=200):
    return render(
        request,
        "manage/imports.html",
        {
            "prompt_form": prompt_form or PromptImportForm(prefix="prompts"),
            "completion_form": completion_form or CompletionImportForm(prefix="completions"),
            "jobs": jobs_visible_to(request.user).filter(kind__in=IMPORT_KINDS).order_by("-pk")[:10],
            "max_file_bytes": settings.IMPORT_MAX_FILE_BYTES,
            "max_line_bytes": settings.IMPORT_MAX_LINE_BYTES,
        },
        status=status,
    )


@batch_admin_required
def imports(request):
    if request.method != "POST":
        return _page(request)
    if "prompts-file" in request.FILES or request.POST.get("which") == "prompts":
        return _import_prompts(request)
    return _import_completions(request)


def _import_prompts(request):
    form = PromptImportForm(request.POST, request.FILES, prefix="prompts")
    if not form.is_valid():
        return _page(request, prompt_form=form, status=400)
    d = form.cleaned_data
    batch = (
        {"name": d["batch_name"], "overlap": d["overlap"], "labelers": list(d["labelers"])}
        if d["batch_name"]
        else None
    )
    try:
        job = job_start_prompt_import(
            upload=d["file"], format=d["format"], pii=d["pii"], batch=batch, created_by=request.user
        )
    except ServiceError as exc:
        add_service_error(form, exc)
        return _page(request, prompt_form=form, status=start_error_status(exc))
    return redirect("manage:job", pk=job.pk)


def _import_completions(request):
    form = CompletionImportForm(request.POST, request.FILES, prefix="completions")
    if not form.is_valid():
        return _page(request, completion_form=form, status=400)
    d = form.cleaned_data
    batch = {
        "name": d["batch_name"],
        "kind": d["kind"],
        "overlap": d["overlap"],
        "labelers": list(d["labelers"]),
    }
    try:
        job = job_start_completion_import(
            upload=d["file"], batch=batch, pii=d["pii"], created_by=request.user
        )
    except ServiceError as exc:
        add_service_error(form, exc)
        return _page(request, completion_form=form, status=start_error_status(exc))
    return redirect("manage:job", pk=job.pk)
