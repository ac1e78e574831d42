"""A refused submission of a task page, answered Post/Redirect/Get: the work sent becomes the server draft,
what was sent and why it was refused wait in the session, and the answer is a redirect back to the task page.
So a reload or Back never posts the old form again (which used to overwrite the draft typed since)."""

import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from django import forms
from django.forms.utils import ErrorList
from django.http import HttpRequest, HttpResponseRedirect, QueryDict
from django.urls import reverse
from django.utils.datastructures import MultiValueDict

from core.errors import AssignmentUnavailable, ServiceError

from ..handout.work import assignment_save_draft
from ..models import Assignment
from .navigation import assignment_lost, posted_seconds

_Form = TypeVar("_Form", bound=forms.Form)


def _session_key(assignment: Assignment) -> str:
    return f"refused-submission-{assignment.pk}"


def posted(form: forms.Form) -> "MultiValueDict[str, Any]":
    """What a task page's form was sent, with every value of a field: refused_form binds it to request.POST
    or a QueryDict, and an unbound form's data is an empty MultiValueDict (forms.Form)."""
    return cast("MultiValueDict[str, Any]", form.data)


def refuse(
    request: HttpRequest, assignment: Assignment, form: forms.Form, *, draft: dict
) -> HttpResponseRedirect:
    """Keep `draft` (the page's work as sent) as the server draft, remember the form's errors, go back (303)."""
    stamped = {**draft, "seconds": posted_seconds(form), "saved_at": int(time.time() * 1000)}
    try:
        assignment_save_draft(assignment=assignment, draft=stamped)
    except AssignmentUnavailable as exc:
        return assignment_lost(request, exc)
    except ServiceError:  # too large to keep as a draft: the session copy below still shows it once
        pass
    data = posted(form)
    sent = {name: data.getlist(name) for name in data if name != "csrfmiddlewaretoken"}
    request.session[_session_key(assignment)] = {"data": sent, "errors": form.errors.get_json_data()}
    return HttpResponseRedirect(reverse("workspace-assignment", args=[assignment.pk]), status=303)


def refused_form(
    request: HttpRequest, assignment: Assignment, make_form: Callable[[QueryDict | None], _Form]
) -> _Form:
    """The page's form: bound to what was sent (a POST, or the GET right after a refusal, with its errors:
    once, a reload shows the plain page and the newest draft); else unbound. The page's script keeps the
    values of a bound form and restores the draft into an unbound one."""
    refused = request.session.pop(_session_key(assignment), None) if request.method == "GET" else None
    if not refused:
        return make_form(request.POST or None)
    data = QueryDict(mutable=True)
    for name, values in refused["data"].items():
        data.setlist(name, values)
    form = make_form(data)
    form.is_valid()
    for field, errors in refused["errors"].items():
        known: ErrorList | list[str] = form.errors.get(field, [])
        for error in errors:
            if error["message"] not in known:
                form.add_error(None if field == "__all__" else field, error["message"])
    return form
