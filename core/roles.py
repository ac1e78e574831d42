"""Roles are Django groups (created by labeling's migration 0003); these helpers answer 'is this user a
...'. Granting and taking roles (audited) and each role's admin permissions live in labeling.roles."""

from collections.abc import Iterable

from django.contrib.auth.models import AnonymousUser, User

ROLE_LABELER = "labeler"
ROLE_BATCH_ADMIN = "batch admin"
ROLE_RESEARCHER = "researcher"
ROLES = (ROLE_LABELER, ROLE_BATCH_ADMIN, ROLE_RESEARCHER)
_ROLE_CACHE = "_role_cache"  # the user's group names, kept on the user object for the request


def has_role(user: User | AnonymousUser, role: str) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    cache = getattr(user, _ROLE_CACHE, None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        setattr(user, _ROLE_CACHE, cache)
    return role in cache


def remember_roles(user: User, names: Iterable[str]) -> None:
    """The names of the user's groups, read along with the user (the API's token authentication does),
    so that has_role asks the database no more during this request."""
    setattr(user, _ROLE_CACHE, set(names))


def is_labeler(user: User | AnonymousUser) -> bool:
    return has_role(user, ROLE_LABELER)


def is_batch_admin(user: User | AnonymousUser) -> bool:
    return has_role(user, ROLE_BATCH_ADMIN)


def is_researcher(user: User | AnonymousUser) -> bool:
    return has_role(user, ROLE_RESEARCHER)
