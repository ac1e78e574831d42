"""A user's own account: logging in (which marks the browser as theirs for the login throttles), changing
the password (its old-password check throttled like a login), their API tokens, and "log out everywhere";
and for batch admins their team's tokens (labeling.teams)."""

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import AuthenticationForm, PasswordChangeForm
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from core.errors import ServiceError
from core.login_throttle import (
    login_refusal,
    password_check_allowed,
    password_check_failed,
    remember_device,
)
from core.permissions import signed_in_user

from ..services.tokens import (
    log_out_everywhere,
    revocable_token,
    team_tokens,
    token_create,
    token_revoke,
    tokens_of,
)
from .manage_access import batch_admin_required

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from knox.models import AuthToken


class LoginView(auth_views.LoginView):
    def form_valid(self, form: AuthenticationForm) -> HttpResponse:
        response = super().form_valid(form)
        remember_device(response, form.get_user())
        return response


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """The old password is a password guess like a login's: refused while the throttles refuse this
    client, and a wrong one counted (core.login_throttle)."""

    def __init__(self, user: "User", *args: Any, request: HttpRequest, **kwargs: Any) -> None:
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        username = self.user.get_username()
        if not password_check_allowed(self.request, username):
            raise forms.ValidationError(login_refusal(self.request).message, code="throttled")
        try:
            return super().clean_old_password()
        except forms.ValidationError:
            password_check_failed(self.request, username, sender=type(self))
            raise


class PasswordChangeView(auth_views.PasswordChangeView):
    # Our own template name: registration/password_change_form.html is the admin's page.
    template_name = "registration/password_change.html"
    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self) -> dict[str, Any]:
        return {**super().get_form_kwargs(), "request": self.request}


def _tokens_page(
    request: HttpRequest, *, new_token: "AuthToken | None" = None, secret: str = "", status: int = 200
) -> HttpResponse:
    mine = tokens_of(user=signed_in_user(request))
    context = {"tokens": list(mine), "new_token": new_token, "secret": secret}
    return render(request, "registration/tokens.html", context, status=status)


@never_cache  # the page that shows a new secret must stay out of every cache
@login_required
def tokens(request: HttpRequest) -> HttpResponse:
    """My API tokens; POST makes one and shows its secret, this once."""
    if request.method != "POST":
        return _tokens_page(request)
    try:
        token, secret = token_create(user=signed_in_user(request))
    except ServiceError as exc:
        messages.error(request, exc.message)
        return _tokens_page(request, status=400)
    return _tokens_page(request, new_token=token, secret=secret)


@require_POST
@login_required
def token_revoke_view(request: HttpRequest, prefix: str) -> HttpResponse:
    """Revoke my token, or (batch admins) a token of a labeler in my team; any other is a 404."""
    token = revocable_token(actor=signed_in_user(request), prefix=prefix)
    if token is None:
        raise Http404("No such token (or not one you may revoke).")
    token_revoke(token=token, actor=request.user)
    mine = token.user_id == request.user.pk
    owner = "" if mine else f" of {token.user.get_username()}"
    messages.success(request, f"Token {token.token_key}{owner} revoked.")
    return redirect("tokens" if mine else "team_tokens")


@require_POST
@login_required
def logout_everywhere(request: HttpRequest) -> HttpResponse:
    done = log_out_everywhere(user=signed_in_user(request), keep_session=request.session.session_key)
    messages.success(
        request,
        f"Logged out everywhere else: {done.tokens} API token{'s' * (done.tokens != 1)} revoked, "
        f"{done.sessions} other session{'s' * (done.sessions != 1)} ended.",
    )
    return redirect("tokens")


@batch_admin_required
def team_tokens_view(request: HttpRequest) -> HttpResponse:
    admin = signed_in_user(request)
    return render(request, "registration/team_tokens.html", {"tokens": list(team_tokens(admin=admin))})
