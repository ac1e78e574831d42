"""Who may do what, in one place: the API's permission class (a rule per action) and the page-side role
checks of the workspace, quality and training pages. Object checks stay with the views: each scopes its
queryset to what the user may see."""

from collections.abc import Callable
from functools import wraps
from typing import Any, cast

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser, User
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from .roles import is_batch_admin, is_labeler, is_researcher

Rule = Callable[[User | AnonymousUser], bool]


# The API: every view names a rule per action (ByRole).


def signed_in_user(request: HttpRequest) -> User:
    """The user of a view behind login_required or a role decorator built on it (below, and
    labeling.views.manage_access): those send anonymous users to the login page first, so it is never
    AnonymousUser here."""
    return cast(User, request.user)


def signed_in(user: User | AnonymousUser) -> bool:
    """Any signed-in user, with or without a role (ByRole has checked that the user is authenticated):
    the API's root, schema and docs, and one's own tokens."""
    return True


def any_role(user: User | AnonymousUser) -> bool:
    return is_labeler(user) or is_batch_admin(user) or is_researcher(user)


def admin_or_researcher(user: User | AnonymousUser) -> bool:
    return is_batch_admin(user) or is_researcher(user)


class ByRole(BasePermission):
    """The view's `roles` maps each action (viewsets) or method (plain views) to a rule on the user.
    Objects are checked by scoping each view's queryset to what the user may see."""

    message = "Your role does not allow this."

    def has_permission(self, request: Request, view: Any) -> bool:  # view: an ApiMixin view, with roles
        if not (request.user and request.user.is_authenticated):
            return False
        name = getattr(view, "action", None) or (request.method or "").lower()
        rule = view.roles.get(name)
        return bool(rule and rule(request.user))


# The workspace: labelers only.


def labeler_required(view):
    """Anonymous users go to the login page; signed-in users without the labeler role get 403."""

    @login_required
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not is_labeler(request.user):
            raise PermissionDenied("Only labelers work on labeling tasks.")
        return view(request, *args, **kwargs)

    return wrapper


# Quality: batch admins and researchers see everyone's numbers; a labeler sees only their own; batch
# admins manage gold tasks, screening and evaluation batches.


def may_see_all(user: User | AnonymousUser) -> bool:
    return admin_or_researcher(user)


def may_manage(user: User | AnonymousUser) -> bool:
    """Mark gold tasks, set gold rates and pass marks, approve labelers, create evaluation batches."""
    return is_batch_admin(user)


def may_see_labeler(user: User | AnonymousUser, labeler_id: int) -> bool:
    return may_see_all(user) or (is_labeler(user) and user.pk == labeler_id)


def require_see_all(user: User | AnonymousUser) -> None:
    if not may_see_all(user):
        raise PermissionDenied("Only batch admins and researchers can see the whole team's numbers.")


def require_manage(user: User | AnonymousUser) -> None:
    if not may_manage(user):
        raise PermissionDenied("Only batch admins manage gold tasks, screening and evaluation batches.")


def require_see_labeler(user: User | AnonymousUser, labeler_id: int) -> None:
    if not may_see_labeler(user, labeler_id):
        raise PermissionDenied("A labeler sees only their own numbers.")


# Training: researchers start and stop work; batch admins and researchers read; labelers see none of it.


def may_view(user: User | AnonymousUser) -> bool:
    return admin_or_researcher(user)


def may_train(user: User | AnonymousUser) -> bool:
    return is_researcher(user)


def require_view(user: User | AnonymousUser) -> None:
    if not may_view(user):
        raise PermissionDenied("Only researchers and batch admins can see training runs and models.")


def require_train(user: User | AnonymousUser) -> None:
    if not may_train(user):
        raise PermissionDenied("Only researchers can start, cancel or retry training.")
