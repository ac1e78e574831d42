"""Who may see and do what on the training side: researchers start and stop work; batch admins and
researchers read; labelers see none of it."""

from django.core.exceptions import PermissionDenied

from labeling.roles import is_batch_admin, is_researcher


def may_view(user) -> bool:
    return is_researcher(user) or is_batch_admin(user)


def may_train(user) -> bool:
    return is_researcher(user)


def require_view(user) -> None:
    if not may_view(user):
        raise PermissionDenied("Only researchers and batch admins can see training runs and models.")


def require_train(user) -> None:
    if not may_train(user):
        raise PermissionDenied("Only researchers can start, cancel or retry training.")
