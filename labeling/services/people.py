"""A batch admin onboards the labelers of their team from the product: creates their accounts, resets
their passwords and grants or takes the labeler role, each in one transaction with its audit record.

A team is the users sharing a non-role group with the batch admin (labeling.teams). The people a batch
admin may act on are that team's members who hold no other power: never staff, a superuser, a researcher
or a batch admin (those stay with superusers, in the admin). Anyone else is "not found", as if the
account did not exist, so the pages do not tell a batch admin who else has an account.

A new or reset password is made here and handed back once for the batch admin to pass on; only its hash
is stored. Saving a new password revokes the user's API tokens (labeling.password_changes) and Django
ends their sessions (the session keeps a hash of the password).
"""

import secrets
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import QuerySet

from audit.services import Action, audit_record
from core.errors import ServiceError
from core.roles import ROLE_LABELER, ROLES, is_batch_admin

from ..roles import role_add, role_remove
from ..teams import team_groups

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# secrets.token_urlsafe(12): 16 characters, 96 bits; long enough that nobody guesses it before the labeler
# logs in, short enough to read out. Django's validators (length, common, numeric) accept it.
PASSWORD_BYTES = 12


class NotInTeam(ServiceError):
    """The account is not one this batch admin may manage (the pages answer 404)."""


def _require_batch_admin(admin: "User") -> None:
    if not is_batch_admin(admin):
        raise ServiceError("Only batch admins manage labelers.", code="forbidden")


def team_members(*, admin: "User") -> QuerySet:
    """The members of `admin`'s teams a batch admin may manage: labelers, and members with no role yet."""
    if not is_batch_admin(admin):
        return get_user_model().objects.none()
    others = [role for role in ROLES if role != ROLE_LABELER]
    return (
        get_user_model()
        .objects.filter(groups__in=team_groups(admin), is_staff=False, is_superuser=False)
        .exclude(groups__name__in=others)
        .exclude(pk=admin.pk)
        .distinct()
        .order_by("username")
    )


def team_member(*, admin: "User", user_id: int) -> "User":
    """The member of admin's team with this id; NotInTeam for anyone else."""
    _require_batch_admin(admin)
    member = team_members(admin=admin).filter(pk=user_id).first()
    if member is None:
        raise NotInTeam("No such member of your team.", code="not_found")
    return member


def _new_password(user: "User") -> str:
    password = secrets.token_urlsafe(PASSWORD_BYTES)
    user.set_password(password)
    return password


def _clean_username(username: str) -> str:
    username = (username or "").strip()
    if not username:
        raise ServiceError("Give a username.", field="username")
    if len(username) > 150:
        raise ServiceError("A username is at most 150 characters.", field="username")
    try:
        UnicodeUsernameValidator()(username)
    except ValidationError as exc:
        raise ServiceError(str(exc.messages[0]), field="username") from exc
    if get_user_model().objects.filter(username__iexact=username).exists():
        raise ServiceError(f"The username '{username}' is taken.", field="username")
    return username


def labeler_create(
    *, admin: "User", username: str, display_name: str = "", email: str = "", team: Group
) -> tuple["User", str]:
    """A new labeler in one of admin's teams; returns the user and their password, shown this once."""
    _require_batch_admin(admin)
    if not team_groups(admin).filter(pk=team.pk).exists():
        raise ServiceError("Choose one of your teams.", field="team")
    username = _clean_username(username)
    email = (email or "").strip()
    if email:
        try:
            validate_email(email)
        except ValidationError as exc:
            raise ServiceError(f"'{email}' is not an email address.", field="email") from exc
    with transaction.atomic():
        user = get_user_model()(username=username, first_name=display_name.strip()[:150], email=email)
        password = _new_password(user)
        user.save()
        user.groups.add(team)
        audit_record(
            actor=admin,
            action=Action.LABELER_CREATED,
            target=user,
            details={"team": team.name, "role": ROLE_LABELER},
        )
        role_add(user=user, role=ROLE_LABELER, actor=admin)
    return user, password


def password_reset(*, admin: "User", user_id: int) -> tuple["User", str]:
    """A new password for a member of admin's team, shown this once; their API tokens and sessions end."""
    with transaction.atomic():
        member = team_member(admin=admin, user_id=user_id)
        password = _new_password(member)
        member.save(update_fields=["password"])
        audit_record(actor=admin, action=Action.PASSWORD_RESET, target=member)
    return member, password


def labeler_role_set(*, admin: "User", user_id: int, granted: bool) -> tuple["User", bool]:
    """Grant (granted=True) or take the labeler role from a member of admin's team. The only role a batch
    admin hands out: researchers and batch admins are made by a superuser. Returns the member and whether
    anything changed (role_add and role_remove audit the change)."""
    with transaction.atomic():
        member = team_member(admin=admin, user_id=user_id)
        change = role_add if granted else role_remove
        changed = change(user=member, role=ROLE_LABELER, actor=admin)
    return member, changed
