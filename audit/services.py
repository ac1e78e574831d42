"""Recording audit events. Call `audit_record` inside the transaction.atomic() block of the change it
records: the event is then committed with the change, and rolled back with it."""

from typing import TYPE_CHECKING

from django.db import models

from .models import Action, AuditEvent

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

__all__ = ["Action", "audit_record"]


def audit_record(
    *,
    actor: "User | AnonymousUser | None",
    action: Action | str,
    target: models.Model | None,
    details: dict | None = None,
) -> AuditEvent:
    """Add one event. `actor` is the user who acted, or None for the system (an anonymous user counts
    as None); `target` is the object acted on (saved, so it has a primary key)."""
    if action not in Action.values:
        raise ValueError(f"unknown audit action {action!r}; add it to audit.models.Action first.")
    if actor is not None and not actor.is_authenticated:
        actor = None
    return AuditEvent.objects.create(
        actor=actor,
        actor_name=actor.get_username() if actor else "",
        action=action,
        object_type=target._meta.label_lower if target is not None else "",
        object_id=str(target.pk) if target is not None and target.pk is not None else "",
        object_repr=str(target)[:200] if target is not None else "",
        details=details or {},
    )
