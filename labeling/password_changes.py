"""A password change, by any path, revokes the user's API tokens.

The paths are many (the password page, the admin, `changepassword`, `set_password()` and `save()` in a
script or a shell), so this watches the one thing they share: the stored hash changes when the user row
is saved. Connected to the user model's pre_save and post_save in LabelingConfig.ready(). Not covered:
a queryset update() or raw SQL, which send no signal.

Django re-hashing a password at login (a stronger hasher, more iterations) changes the hash but not the
password: it saves only the password and clears `_password`, which a real change through set_password()
leaves set until after the save.
"""

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .services.tokens import PASSWORD_CHANGED, tokens_revoke_all

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def _is_rehash(user: "User", update_fields: Iterable[str] | None) -> bool:
    password = user._password  # type: ignore[attr-defined]  # Django's private attribute, not in django-stubs
    return password is None and update_fields is not None and set(update_fields) == {"password"}


def remember_stored_password(
    sender: type["User"],
    instance: "User",
    raw: bool = False,
    update_fields: Iterable[str] | None = None,
    **kwargs: Any,
) -> None:
    """pre_save: the hash as stored before this save, when this save may change it."""
    if raw or instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    if _is_rehash(instance, update_fields):
        return
    stored = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    instance.__dict__["_stored_password"] = stored  # popped by revoke_tokens_on_password_change


def revoke_tokens_on_password_change(
    sender: type["User"], instance: "User", created: bool = False, raw: bool = False, **kwargs: Any
) -> None:
    """post_save: the hash changed, so the password did: every token made with the old one goes."""
    stored = instance.__dict__.pop("_stored_password", None)
    if created or raw or stored is None or stored == instance.password:
        return
    tokens_revoke_all(user=instance, actor=None, reason=PASSWORD_CHANGED)
