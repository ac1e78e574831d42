"""The People page of batch admins (/manage/people/): their team's labelers, a new labeler, a password
reset and the labeler role. The rules are labeling.services.people; a password made here is shown on the
answer to the POST that made it, once, and the page is never cached."""

from django import forms
from django.contrib import messages
from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from core.errors import ServiceError
from core.roles import ROLE_LABELER

from ..services import people as service
from ..teams import team_groups
from .manage_access import batch_admin_required
from .manage_forms import add_service_error


class LabelerCreateForm(forms.Form):
    username = forms.CharField(max_length=150)
    display_name = forms.CharField(max_length=150, required=False)
    email = forms.EmailField(required=False, help_text="Optional; no email is sent.")
    team = forms.ModelChoiceField(queryset=None, empty_label=None)

    def __init__(self, *args, admin, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].queryset = team_groups(admin).order_by("name")


def _page(request, *, form=None, shown=None, password: str = "", status: int = 200):
    members = service.team_members(admin=request.user).prefetch_related("groups")
    rows = [{"user": m, "labeler": any(g.name == ROLE_LABELER for g in m.groups.all())} for m in members]
    context = {
        "rows": rows,
        "form": form or LabelerCreateForm(admin=request.user),
        "has_team": team_groups(request.user).exists(),
        "shown": shown,
        "password": password,
        "section": "people",
    }
    return render(request, "manage/people.html", context, status=status)


@never_cache  # the answer to a POST shows a new password
@batch_admin_required
def people(request):
    """GET: the team; POST: a new labeler, their password shown this once."""
    if request.method != "POST":
        return _page(request)
    form = LabelerCreateForm(request.POST, admin=request.user)
    if form.is_valid():
        try:
            user, password = service.labeler_create(admin=request.user, **form.cleaned_data)
        except ServiceError as exc:
            add_service_error(form, exc)
        else:
            messages.success(request, f"Labeler {user.username} created.")
            return _page(request, shown=user, password=password)
    return _page(request, form=form, status=400)


def _member_or_404(call):
    try:
        return call()
    except service.NotInTeam as exc:
        raise Http404(exc.message) from exc


@never_cache
@require_POST
@batch_admin_required
def password_reset(request, user_id: int):
    member, password = _member_or_404(lambda: service.password_reset(admin=request.user, user_id=user_id))
    messages.success(request, f"New password for {member.username}; their API tokens were revoked.")
    return _page(request, shown=member, password=password)


@require_POST
@batch_admin_required
def labeler_role(request, user_id: int):
    op = request.POST.get("op")
    if op not in ("grant", "revoke"):
        return HttpResponseBadRequest("op must be 'grant' or 'revoke'.")
    granted = op == "grant"
    member, changed = _member_or_404(
        lambda: service.labeler_role_set(admin=request.user, user_id=user_id, granted=granted)
    )
    verb = "now has" if granted else "no longer has"
    if changed:
        messages.success(request, f"{member.username} {verb} the labeler role.")
    return redirect("manage:people")
