"""A refused submission of a task page, answered Post/Redirect/Get: the work sent becomes the server draft,
what was sent and why it was refused wait in the session, and the answer is a redirect back to the task page.
So a reload or Back never posts the old form again (which used to overwrite the draft typed since)."""

import time

from django.http import HttpResponseRedirect, QueryDict
from django.urls import reverse

from core.errors import AssignmentUnavailable, ServiceError

from ..handout.work import assignment_save_draft
from ..models import Assignment
from .navigation import assignment_lost, posted_seconds


def _session_key(assignment: Assignment) -> str:
    return f"refused-submission-{assignment.pk}"


def refuse(request, assignment: Assignment, form, *, draft: dict) -> HttpResponseRedirect:
    """Keep `draft` (the page's work as sent) as the server draft, remember the form's errors, go back (303)."""
    stamped = {**draft, "seconds": posted_seconds(form), "saved_at": int(time.time() * 1000)}
    try:
        assignment_save_draft(assignment=assignment, draft=stamped)
    except AssignmentUnavailable as exc:
        return assignment_lost(request, exc)
    except ServiceError:  # too large to keep as a draft: the session copy below still shows it once
        pass
    sent = {name: form.data.getlist(name) for name in form.data if name != "csrfmiddlewaretoken"}
    request.session[_session_key(assignment)] = {"data": sent, "errors": form.errors.get_json_data()}
    return HttpResponseRedirect(reverse("workspace-assignment", args=[assignment.pk]), status=303)


def refused_form(request, assignment: Assignment, make_form):
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
        known = form.errors.get(field, [])
        for error in errors:
            if error["message"] not in known:
                form.add_error(None if field == "__all__" else field, error["message"])
    return form
