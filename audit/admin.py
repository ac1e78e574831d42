"""The audit log in the Django admin: a list to read and filter (action, actor, date), nothing to change."""

import json
from typing import cast

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html

from .models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "who", "action", "object_type", "object_id", "object_repr"]
    list_filter = ["action", ("actor", admin.RelatedOnlyFieldListFilter), "created_at"]
    date_hierarchy = "created_at"
    search_fields = ["actor_name", "object_repr", "object_id"]
    fields = [
        "created_at",
        "actor",
        "actor_name",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "pretty_details",
    ]
    # The same list; the stubs type `fields` as fieldsets, but each entry above is one field's name.
    readonly_fields = cast(list[str], fields)
    list_select_related = ["actor"]

    @admin.display(description="actor", ordering="actor_name")
    def who(self, event: AuditEvent) -> str:
        return event.actor_name or "system"

    @admin.display(description="details")
    def pretty_details(self, event: AuditEvent) -> str:
        return format_html(
            "<pre>{}</pre>", json.dumps(event.details, indent=2, sort_keys=True, ensure_ascii=False)
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEvent | None = None) -> bool:
        return False
