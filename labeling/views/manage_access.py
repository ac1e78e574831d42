"""Who may open the management pages: batch admins run batches and imports, researchers read them and
export datasets. Anonymous users go to the login page; other roles get 403."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from core.roles import is_batch_admin, is_researcher


def admin_or_researcher(user) -> bool:
    return is_batch_admin(user) or is_researcher(user)


def role_required(rule: Callable[[object], bool], message: str):
    def decorate(view):
        @login_required
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if not rule(request.user):
                raise PermissionDenied(message)
            return view(request, *args, **kwargs)

        return wrapper

    return decorate


batch_admin_required = role_required(is_batch_admin, "Only batch admins can do this.")
researcher_required = role_required(is_researcher, "Only researchers can do this.")
reader_required = role_required(admin_or_researcher, "Only batch admins and researchers can see this page.")
