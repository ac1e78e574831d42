"""The data explorer (/explore/): what was labeled, for batch admins and researchers. Lists of rankings,
demonstrations and prompts with filters and search in the URL, keyset pages, and an item's page with
every label on it. Labelers get 403, anonymous users the login page; each object is read through the
user's scope (labeling.selectors.explorer.explorer_scope). Pages that only read: GET and HEAD."""

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from ..selectors import explorer as lists
from ..selectors.explorer_items import explorer_prompt, explorer_task, prompt_view, ranking_task_view
from ..selectors.explorer_paging import CountHint, count_hint, keyset_page
from ..selectors.explorer_rows import ranking_list_rows
from .explorer_forms import ExplorerForm
from .manage_access import reader_required

TITLES = {"rankings": "Rankings", "demonstrations": "Demonstrations", "prompts": "Prompts"}


def _list(request: HttpRequest, kind: str) -> HttpResponse:
    scope = lists.explorer_scope(user=request.user)
    form = ExplorerForm(request.GET, kind=kind, scope=scope)
    context = {
        "kind": kind,
        "title": TITLES[kind],
        "form": form,
        "full_text": connection.vendor == "postgresql",
    }
    if not form.is_valid():
        return render(request, "explore/list.html", context, status=400)
    filters = form.filters()
    qs = lists.LISTS[kind](scope=scope, filters=filters)
    count, ids = count_hint(qs, whole_table=scope is None and not filters.active)
    if ids is not None:  # every match is known: page over those ids only
        qs = qs.filter(pk__in=ids)
    page = keyset_page(qs, after=form.cleaned_data.get("after"), before=form.cleaned_data.get("before"))
    query = request.GET.copy()
    for key in ("after", "before"):
        query.pop(key, None)
    context.update(
        page=page,
        rows=ranking_list_rows(page.rows) if kind == "rankings" else page.rows,
        count=count,
        summary=_summary(count, kind, filtered=filters.active),
        filtered=filters.active,
        query=query.urlencode(),
    )
    return render(request, "explore/list.html", context)


def _summary(count: CountHint, kind: str, *, filtered: bool) -> str:
    """ "12 rankings match", "1 prompt matches", "about 1,000,000 demonstrations"."""
    one = count.value == 1 and not (count.estimate or count.more)
    noun = kind[:-1] if one else kind
    verb = (" matches" if one else " match") if filtered else ""
    return f"{count} {noun}{verb}"


@require_safe
@reader_required
def rankings(request: HttpRequest) -> HttpResponse:
    return _list(request, "rankings")


@require_safe
@reader_required
def demonstrations(request: HttpRequest) -> HttpResponse:
    return _list(request, "demonstrations")


@require_safe
@reader_required
def prompts(request: HttpRequest) -> HttpResponse:
    return _list(request, "prompts")


@require_safe
@reader_required
def task(request: HttpRequest, task_id: int) -> HttpResponse:
    scope = lists.explorer_scope(user=request.user)
    view = ranking_task_view(task=explorer_task(scope=scope, task_id=task_id))
    return render(request, "explore/task.html", {"view": view, "kind": "rankings"})


@require_safe
@reader_required
def prompt(request: HttpRequest, pk: int) -> HttpResponse:
    scope = lists.explorer_scope(user=request.user)
    view = prompt_view(prompt=explorer_prompt(scope=scope, pk=pk), scope=scope)
    return render(request, "explore/prompt.html", {"view": view, "kind": "prompts"})
