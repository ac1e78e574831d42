"""The imports page: prompts (JSONL, CSV) and completions (JSONL) files, for batch admins."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse

from ..errors import ServiceError
from ..services.imports import ImportRejected, completions_import, prompts_import
from .manage_access import batch_admin_required
from .manage_forms import CompletionImportForm, PromptImportForm, add_service_error


def _page(
    request, prompt_form=None, completion_form=None, rejected: ImportRejected | None = None, status=200
):
    return render(
        request,
        "manage/imports.html",
        {
            "prompt_form": prompt_form or PromptImportForm(prefix="prompts"),
            "completion_form": completion_form or CompletionImportForm(prefix="completions"),
            "rejected": rejected,
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
    upload = d["file"]
    fmt = d["format"] or ("csv" if upload.name.lower().endswith(".csv") else "jsonl")
    batch = (
        {"name": d["batch_name"], "overlap": d["overlap"], "labelers": list(d["labelers"])}
        if d["batch_name"]
        else None
    )
    try:
        result = prompts_import(
            file=upload, format=fmt, pii=d["pii"], created_by=request.user, demonstration_batch=batch
        )
    except ImportRejected as exc:
        return _page(request, prompt_form=form, rejected=exc, status=400)
    except ServiceError as exc:
        add_service_error(form, exc)
        return _page(request, prompt_form=form, status=400)
    messages.success(
        request,
        f"{upload.name}: {result.lines} lines, {result.created} prompts created, "
        f"{result.duplicates} duplicates and {result.capped} over the per-user cap skipped, "
        f"{result.pii_flagged} flagged and {result.pii_scrubbed} scrubbed for PII.",
    )
    if result.batch is not None:
        return redirect("manage:batch", pk=result.batch.pk)
    return redirect(reverse("manage:imports"))


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
        result = completions_import(file=d["file"], batch=batch, pii=d["pii"], created_by=request.user)
    except ImportRejected as exc:
        return _page(request, completion_form=form, rejected=exc, status=400)
    except ServiceError as exc:
        add_service_error(form, exc)
        return _page(request, completion_form=form, status=400)
    messages.success(
        request,
        f"{d['file'].name}: {result.lines} lines, {result.tasks_created} tasks, "
        f"{result.completions_created} completions and {result.prompts_created} prompts created; "
        f"{result.already_imported} lines were already imported.",
    )
    if result.batch is not None:
        return redirect("manage:batch", pk=result.batch.pk)
    return redirect(reverse("manage:imports"))
