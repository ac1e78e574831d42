"""Granting and taking roles (audited), and the Django-admin permissions of each role on labeling's and
training's models. The role names and the 'is this user a ...' checks are core.roles."""

from typing import TYPE_CHECKING, Any

from django.apps import apps as installed
from django.contrib.auth.management import create_permissions
from django.contrib.auth.models import Group, Permission
from django.db import DEFAULT_DB_ALIAS, transaction

from audit.services import Action, audit_record
from core.errors import ServiceError
from core.roles import ROLE_BATCH_ADMIN, ROLE_RESEARCHER, ROLES

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User


def _role_group(role: str) -> Group:
    if role not in ROLES:
        raise ServiceError(f"unknown role '{role}'; choose one of: {', '.join(ROLES)}.", field="role")
    return Group.objects.get_or_create(name=role)[0]


def role_add(*, user: "User", role: str, actor: "User | AnonymousUser | None" = None) -> bool:
    """Give `user` the role; `actor` is who decided (None: a command or the system). False when the
    user already had it (then nothing changes and nothing is recorded)."""
    group = _role_group(role)
    with transaction.atomic():
        if user.groups.filter(pk=group.pk).exists():
            return False
        user.groups.add(group)
        audit_record(actor=actor, action=Action.ROLE_GRANTED, target=user, details={"role": role})
    user.__dict__.pop("_role_cache", None)
    return True


def role_remove(*, user: "User", role: str, actor: "User | AnonymousUser | None" = None) -> bool:
    """Take the role from `user`. False when the user did not have it."""
    group = _role_group(role)
    with transaction.atomic():
        if not user.groups.filter(pk=group.pk).exists():
            return False
        user.groups.remove(group)
        audit_record(actor=actor, action=Action.ROLE_REVOKED, target=user, details={"role": role})
    user.__dict__.pop("_role_cache", None)
    return True


# Django-admin permissions of each role: to read, never to write. Labels, the texts they refer to and
# batches change through the product's pages and API (their services check the rules and audit each
# change); only a superuser writes in the admin, audited (audit.admin_writes). Kept in step after every
# migrate (post_migrate): a permission on these apps that a role should not hold is taken away.
READABLE = {
    "labeling": (
        "batch",
        "task",
        "taskcompletion",
        "assignment",
        "prompt",
        "completion",
        "demonstration",
        "ranking",
        "rating",
        "comparison",
        "datasetsnapshot",
    ),
    "training": ("modelversion", "trainingrun"),
}
ROLE_PERMISSIONS = {
    ROLE_BATCH_ADMIN: {app: {model: "v" for model in models} for app, models in READABLE.items()},
    ROLE_RESEARCHER: {app: {model: "v" for model in models} for app, models in READABLE.items()},
}
_ACTIONS = {"a": "add", "v": "view", "c": "change", "d": "delete"}


def sync_role_permissions(**kwargs: Any) -> None:  # a post_migrate receiver
    """Give each role exactly its permissions on the apps above (ROLE_PERMISSIONS; none for a labeler),
    taking away any other on them: a database set up before a permission was withdrawn loses it at the
    next migrate. Permissions on other apps are left as an operator set them."""
    for app in READABLE:  # training's come after ours on a first migrate: made now, so the roles get them
        create_permissions(
            installed.get_app_config(app), verbosity=0, using=kwargs.get("using", DEFAULT_DB_ALIAS)
        )
    for role in ROLES:  # also after a test database flush, which empties the groups table
        group, _ = Group.objects.get_or_create(name=role)
        apps = ROLE_PERMISSIONS.get(role, {})
        codenames = {
            (app, f"{_ACTIONS[a]}_{model}")
            for app, models in apps.items()
            for model, acts in models.items()
            for a in acts
        }
        held = group.permissions.filter(content_type__app_label__in=READABLE).select_related("content_type")
        group.permissions.remove(
            *[p for p in held if (p.content_type.app_label, p.codename) not in codenames]
        )
        wanted = Permission.objects.filter(content_type__app_label__in=apps.keys()).select_related(
            "content_type"
        )
        group.permissions.add(*[p for p in wanted if (p.content_type.app_label, p.codename) in codenames])
