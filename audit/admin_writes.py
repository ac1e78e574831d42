"""Writes made in the Django admin: superusers only, each one in the audit log.

Below superuser the admin only reads: labels, the texts they refer to and the state of batches change
through the product's pages and API, whose services check the rules and record their own events. What a
superuser adds, changes or deletes here is recorded with who did it, which fields changed and their
values before and after (shortened; never a password).

Django runs a change form with its inlines, and a delete page, inside one transaction, so each event
commits or rolls back with its change. Its bulk "delete selected" action has none: delete_queryset opens one.
"""

from typing import TYPE_CHECKING, Any

from django import forms
from django.contrib import admin
from django.db import models, transaction
from django.http import HttpRequest

from .services import Action, audit_record

if TYPE_CHECKING:
    # What the audited mixin is combined with (ModelAdmin, UserAdmin, GroupAdmin), so mypy knows its super().
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = object

SHOWN_CHARS = 200


def _shown(value: object) -> str | list[str] | None:
    """A field's value as the log keeps it: related objects by id, long text cut short."""
    if value is None:
        return None
    if isinstance(value, models.QuerySet | list | tuple | set):
        return sorted(str(getattr(item, "pk", item)) for item in value)
    text = str(getattr(value, "pk", value))
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _changes(form: forms.BaseForm, obj: models.Model, *, change: bool) -> dict[str, object]:
    """The changed fields of a form; values only for the model's own fields, never a password."""
    fields = sorted(form.changed_data)
    model_fields = {f.name for f in obj._meta.get_fields()} - {"password"}
    valued = [f for f in fields if f in model_fields]
    details: dict[str, object] = {"via": "admin", "fields": fields}
    if change:
        details["before"] = {f: _shown(form.initial.get(f)) for f in valued}
    details["after"] = {f: _shown(form.cleaned_data.get(f)) for f in valued}
    return details


class AuditedAdmin(_ModelAdmin):
    """ModelAdmin mixin: every add, change and delete made through this admin page (its inlines included)
    is an audit event (admin.added, admin.changed, admin.deleted). A save that changed nothing records
    nothing, as the services do."""

    def save_model(self, request: HttpRequest, obj: models.Model, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and not form.changed_data:
            return
        action = Action.ADMIN_CHANGED if change else Action.ADMIN_ADDED
        audit_record(
            actor=request.user, action=action, target=obj, details=_changes(form, obj, change=change)
        )

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        for deleted in formset.deleted_forms:
            if deleted.instance.pk is not None:  # recorded first: a deleted object loses its id
                audit_record(
                    actor=request.user,
                    action=Action.ADMIN_DELETED,
                    target=deleted.instance,
                    details={"via": "admin"},
                )
        super().save_formset(request, form, formset, change)
        initial = set(formset.initial_forms)
        for inline in formset.forms:
            if inline in formset.deleted_forms or not inline.has_changed() or inline.instance.pk is None:
                continue
            existed = inline in initial
            audit_record(
                actor=request.user,
                action=Action.ADMIN_CHANGED if existed else Action.ADMIN_ADDED,
                target=inline.instance,
                details=_changes(inline, inline.instance, change=existed),
            )

    def delete_model(self, request: HttpRequest, obj: models.Model) -> None:
        audit_record(actor=request.user, action=Action.ADMIN_DELETED, target=obj, details={"via": "admin"})
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: models.QuerySet[Any]) -> None:
        with transaction.atomic(using=queryset.db):
            for obj in queryset:
                audit_record(
                    actor=request.user, action=Action.ADMIN_DELETED, target=obj, details={"via": "admin"}
                )
            super().delete_queryset(request, queryset)


class SuperuserWrites:
    """ModelAdmin or inline mixin: below superuser, this admin page only reads (whatever permissions a
    group holds), so labels and what they refer to change only through the product's services."""

    def has_add_permission(self, request: HttpRequest, *args: object) -> bool:
        return request.user.is_superuser

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return request.user.is_superuser

    def has_delete_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return request.user.is_superuser


class SuperuserAuditedAdmin(SuperuserWrites, AuditedAdmin, admin.ModelAdmin):
    """A ModelAdmin that reads for every permitted user, and writes, audited, for superusers only."""
