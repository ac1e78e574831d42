"""Roles are Django groups (created by migration 0003); these helpers answer 'may this user ...'."""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser, Group

from .errors import ServiceError
from .vocab import ROLE_BATCH_ADMIN, ROLE_LABELER, ROLE_RESEARCHER, ROLES


def has_role(user: AbstractBaseUser | AnonymousUser, role: str) -> bool:
    if not user.is_authenticated:
        return False
    if user.is_superuser:
        return True
    cache = getattr(user, "_role_cache", None)
    if cache is None:
        cache = set(user.groups.values_list("name", flat=True))
        user._role_cache = cache
    return role in cache


def is_labeler(user) -> bool:
    return has_role(user, ROLE_LABELER)


def is_batch_admin(user) -> bool:
    return has_role(user, ROLE_BATCH_ADMIN)


def is_researcher(user) -> bool:
    return has_role(user, ROLE_RESEARCHER)


def role_add(*, user, role: str) -> None:
    if role not in ROLES:
        raise ServiceError(f"unknown role '{role}'; choose one of: {', '.join(ROLES)}.", field="role")
    user.groups.add(Group.objects.get_or_create(name=role)[0])
    user.__dict__.pop("_role_cache", None)


# Django-admin permissions of each role, kept in step after every migrate (post_migrate).
ROLE_PERMISSIONS = {
    ROLE_BATCH_ADMIN: {
        "labeling": {
            "batch": "avcd",
            "task": "avcd",
            "taskcompletion": "avcd",
            "assignment": "vc",
            "prompt": "avc",
            "completion": "avc",
            "demonstration": "v",
            "ranking": "v",
            "rating": "v",
            "comparison": "v",
            "datasetsnapshot": "v",
        },
        "training": {"modelversion": "v", "trainingrun": "v"},
    },
    ROLE_RESEARCHER: {
        "labeling": {
            m: "v"
            for m in (
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
            )
        },
        "training": {"modelversion": "v", "trainingrun": "v"},
    },
}
_ACTIONS = {"a": "add", "v": "view", "c": "change", "d": "delete"}


def sync_role_permissions(**kwargs) -> None:
    from django.contrib.auth.models import Permission

    for role in ROLES:  # also after a test database flush, which empties the groups table
        Group.objects.get_or_create(name=role)
    for role, apps in ROLE_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=role)
        codenames = [
            (app, f"{_ACTIONS[a]}_{model}")
            for app, models in apps.items()
            for model, acts in models.items()
            for a in acts
        ]
        perms = [
            p
            for p in Permission.objects.filter(content_type__app_label__in=apps.keys()).select_related(
                "content_type"
            )
            if (p.content_type.app_label, p.codename) in codenames
        ]
        group.permissions.add(*perms)
