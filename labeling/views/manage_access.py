"""Who may open the management pages: batch admins run batches and imports, researchers read them and
export datasets. Anonymous users go to the login page; other roles get 403."""

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponseBase

from core.permissions import Rule
from core.roles import is_batch_admin, is_researcher

_View = TypeVar("_View", bound=Callable[..., HttpResponseBase])


def admin_or_researcher(user: User | AnonymousUser) -> bool:
    return is_batch_admin(user) or is_researcher(user)


def role_required(rule: Rule, message: str) -> Callable[[_View], _View]:
    def decorate(view: _View) -> _View:
        @login_required
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
            if not rule(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return cast(_View, wrapper)  # wraps: the view's own name and signature, behind the role check

    return decorate


batch_admin_required = role_required(is_batch_admin, "Only batch admins can do this.")
researcher_required = role_required(is_researcher, "Only researchers can do this.")
reader_required = role_required(admin_or_researcher, "Only batch admins and researchers can see this page.")
