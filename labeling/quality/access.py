"""Who sees which quality numbers: batch admins and researchers see everyone's; a labeler sees only their
own; batch admins manage gold tasks, screening and evaluation batches."""

from django.core.exceptions import PermissionDenied

from ..roles import is_batch_admin, is_labeler, is_researcher


def may_see_all(user) -> bool:
    return is_batch_admin(user) or is_researcher(user)


def may_manage(user) -> bool:
    """Mark gold tasks, set gold rates and pass marks, approve labelers, create evaluation batches."""
    return is_batch_admin(user)


def may_see_labeler(user, labeler_id: int) -> bool:
    return may_see_all(user) or (is_labeler(user) and user.pk == labeler_id)


def require_see_all(user) -> None:
    if not may_see_all(user):
        raise PermissionDenied("Only batch admins and researchers can see the whole team's numbers.")


def require_manage(user) -> None:
    if not may_manage(user):
        raise PermissionDenied("Only batch admins manage gold tasks, screening and evaluation batches.")


def require_see_labeler(user, labeler_id: int) -> None:
    if not may_see_labeler(user, labeler_id):
        raise PermissionDenied("A labeler sees only their own numbers.")
