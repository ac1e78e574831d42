"""Task pages where the labeler writes: a prompt (prompt-writing batches) or a demonstration."""

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from core.errors import AssignmentUnavailable, ServiceError

from ..forms import CATEGORY_SHARE, SOURCE_HELP, DemonstrationForm, PromptForm
from ..models import Assignment
from ..services.demonstrations import demonstration_submit
from ..services.prompt_writing import prompt_submit
from ..services.prompts import DuplicatePrompt
from ..vocab import Category
from .navigation import assignment_lost, go_next, posted_seconds, task_context
from .refusals import refuse, refused_form


def _add_service_error(form: forms.Form, exc: ServiceError) -> None:
    form.add_error(exc.field if exc.field in form.fields else None, exc.message)


def _render(
    request: HttpRequest, template: str, assignment: Assignment, form: forms.Form, *, title: str, extra: dict
) -> HttpResponse:
    """A refused submission comes back as a redirect (refusals.refuse); the GET after it shows its errors
    and the values sent (`bound`: the script keeps them rather than restore the draft, which holds the same)."""
    if request.method == "POST":
        return refuse(request, assignment, form, draft=_draft_from_post(form))
    config = {"page": "writing", "bound": form.is_bound, "seconds": posted_seconds(form)}
    context = task_context(assignment, title=title, config=config)
    context.update(form=form, **extra)
    return render(request, template, context)


def _draft_from_post(form: forms.Form) -> dict:
    """What the labeler had on the page when a submission was refused, in the page's draft format."""
    return {name: form.data.get(name, "") for name in ("text", "category", "source") if name in form.fields}


def prompt_page(request: HttpRequest, assignment: Assignment) -> HttpResponse:
    form = refused_form(request, assignment, PromptForm)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            prompt_submit(
                assignment=assignment,
                text=data["text"],
                category=data["category"],
                source=data["source"],
                seconds_spent=data["seconds_spent"],
            )
        except DuplicatePrompt:  # that one exists, never which prompt it is (DuplicatePrompt)
            form.add_error(
                "text", "A similar prompt already exists (same opening text). Write a different one."
            )
        except AssignmentUnavailable as exc:
            return assignment_lost(request, exc)
        except ServiceError as exc:
            _add_service_error(form, exc)
        else:
            messages.success(request, "Prompt saved.")
            return go_next(request, assignment.batch)
    categories = [(category.label, CATEGORY_SHARE[category]) for category in Category]
    return _render(
        request,
        "labeling/workspace/prompt.html",
        assignment,
        form,
        title="Write a prompt",
        extra={"categories": categories, "source_help": list(SOURCE_HELP.values())},
    )


def demonstration_page(request: HttpRequest, assignment: Assignment) -> HttpResponse:
    form = refused_form(request, assignment, DemonstrationForm)
    if request.method == "POST" and form.is_valid():
        try:
            demonstration_submit(
                assignment=assignment,
                text=form.cleaned_data["text"],
                seconds_spent=form.cleaned_data["seconds_spent"],
            )
        except AssignmentUnavailable as exc:
            return assignment_lost(request, exc)
        except ServiceError as exc:
            _add_service_error(form, exc)
        else:
            messages.success(request, "Demonstration saved.")
            return go_next(request, assignment.batch)
    return _render(
        request,
        "labeling/workspace/demonstration.html",
        assignment,
        form,
        title="Write a demonstration",
        extra={"prompt": assignment.task.prompt},
    )
