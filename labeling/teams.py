"""A batch admin's team: the labelers who share a group with them.

Roles are groups too (labeler, batch admin, researcher); every other group is a team (say `team-north`),
the same groups a batch is opened to with Batch.groups. Only a superuser sets who is in one (the admin),
so a batch admin cannot widen their own team. A team's labelers are the members with the labeler role and
no other: a batch admin manages labelers, not fellow batch admins, researchers or staff.
"""

from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models import QuerySet

from core.roles import ROLE_LABELER, ROLES, is_batch_admin

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def team_groups(user: "User") -> QuerySet[Group]:
    return Group.objects.filter(user=user).exclude(name__in=ROLES)


def team_labelers(admin: "User") -> QuerySet:
    """The labelers whose API tokens `admin` may see and revoke (none for a user who is not a batch admin)."""
    User = get_user_model()
    if not is_batch_admin(admin):
        return User.objects.none()
    others = [role for role in ROLES if role != ROLE_LABELER]
    return (
        User.objects.filter(groups__in=team_groups(admin))
        .filter(groups__name=ROLE_LABELER, is_staff=False, is_superuser=False)
        .exclude(groups__name__in=others)
        .exclude(pk=admin.pk)
        .distinct()
    )
