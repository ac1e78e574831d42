"""The People page of batch admins (/manage/people/): their team's labelers, a new labeler, a password
reset and the labeler role. The rules are labeling.services.people; a password made here is shown on the
answer to the POST that made it, once, and the page is never cached."""

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from django import forms
from django.contrib import messages
from django.contrib.auth.models import Group
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from core.errors import ServiceError
from core.permissions import signed_in_user
from core.roles import ROLE_LABELER

from ..services import people as service
from ..teams import team_groups
from .manage_access import batch_admin_required
from .manage_forms import add_service_error

if TYPE_CHECKING:
    from django.contrib.auth.models import User

_T = TypeVar("_T")


class LabelerCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    display_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(required=False, help_text="Optional; no email is sent.")
    team: "forms.ModelChoiceField[Group]" = forms.ModelChoiceField(queryset=None, empty_label=None)

    def __init__(self, *args: Any, admin: "User", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # self.fields holds a copy of the class's `team` field above: a ModelChoiceField.
        cast(forms.ModelChoiceField, self.fields["team"]).queryset = team_groups(admin).order_by("name")


def _page(
    request: HttpRequest,
    *,
    form: LabelerCreateForm | None = None,
    shown: "User | None" = None,
    password: str = "",
    status: int = 200,
) -> HttpResponse:
    admin = signed_in_user(request)
    members = service.team_members(admin=admin).prefetch_related("groups")
    rows = [{"user": m, "labeler": any(g.name == ROLE_LABELER for g in m.groups.all())} for m in members]
    context = {
        "rows": rows,
        "form": form or LabelerCreateForm(admin=admin),
        "has_team": team_groups(admin).exists(),
        "shown": shown,
        "password": password,
        "section": "people",
    }
    return render(request, "manage/people.html", context, status=status)


@never_cache  # the answer to a POST shows a new password
@batch_admin_required
def people(request: HttpRequest) -> HttpResponse:
    """GET: the team; POST: a new labeler, their password shown this once."""
    if request.method != "POST":
        return _page(request)
    admin = signed_in_user(request)
    form = LabelerCreateForm(request.POST, admin=admin)
    if form.is_valid():
        try:
            user, password = service.labeler_create(admin=admin, **form.cleaned_data)
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Labeler {user.username} created.")
            return _page(request, shown=user, password=password)
    return _page(request, form=form, status=400)


def _member_or_404(call: Callable[[], _T]) -> _T:
    try:
        return call()
    except service.NotInTeam as exc:
        raise Http404(exc.message) from exc


@never_cache
@require_POST
@batch_admin_required
def password_reset(request: HttpRequest, user_id: int) -> HttpResponse:
    admin = signed_in_user(request)
    member, password = _member_or_404(lambda: service.password_reset(admin=admin, user_id=user_id))
    messages.success(request, f"New password for {member.username}; their API tokens were revoked.")
    return _page(request, shown=member, password=password)


@require_POST
@batch_admin_required
def labeler_role(request: HttpRequest, user_id: int) -> HttpResponse:
    op = request.POST.get("op")
    if op not in ("grant", "revoke"):
        return HttpResponseBadRequest("op must be 'grant' or 'revoke'.")
    granted = op == "grant"
    member, changed = _member_or_404(
        lambda: service.labeler_role_set(admin=signed_in_user(request), user_id=user_id, granted=granted)
    )
    verb = "now has" if granted else "no longer has"
    if changed:
        messages.success(request, f"{member.username} {verb} the labeler role.")
    return redirect("manage:people")
