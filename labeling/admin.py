"""The labeling models in the Django admin: a place to read them. Below superuser nothing here writes
(audit.admin_writes): labels, the texts they refer to, batches and their members change through the
product's pages and API. A superuser's writes are audited. Drafts and skip reasons are shown to no one:
they are the labeler's own, seen only in the labeler's workspace."""

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db import models, transaction
from django.http import HttpRequest

from audit.admin_writes import AuditedAdmin, SuperuserAuditedAdmin, SuperuserWrites
from audit.services import Action, audit_record
from core.errors import ServiceError
from core.roles import ROLES

from .models import (
    Assignment,
    Batch,
    Comparison,
    Completion,
    DatasetSnapshot,
    Demonstration,
    Prompt,
    Ranking,
    Rating,
    Task,
    TaskCompletion,
)
from .services.exports import snapshot_delete


@admin.register(Prompt)
class PromptAdmin(SuperuserAuditedAdmin):
    list_display = [
        "id",
        "short_text",
        "category",
        "source",
        "split",
        "origin_user",
        "pii_flag",
        "created_at",
    ]
    list_filter = ["category", "source", "split", "pii_flag"]
    search_fields = ["text", "origin_user"]
    readonly_fields = ["dedup_key", "split"]

    @admin.display(description="text")
    def short_text(self, obj: Prompt) -> str:
        return obj.text[:80]


@admin.register(Completion)
class CompletionAdmin(SuperuserAuditedAdmin):
    list_display = ["id", "prompt", "model_version", "source_name", "created_at"]
    list_filter = ["source_name"]
    raw_id_fields = ["prompt", "model_version"]


class TaskCompletionInline(SuperuserWrites, admin.TabularInline):
    model = TaskCompletion
    raw_id_fields = ["completion", "prompt"]
    extra = 0


@admin.register(Batch)
class BatchAdmin(SuperuserAuditedAdmin):
    list_display = ["id", "name", "kind", "status", "overlap", "round_number", "deadline", "created_at"]
    list_filter = ["kind", "status", "round_number"]
    search_fields = ["name"]
    # For everyone, superusers too: a batch opens, pauses, closes and gains or loses labelers through the
    # batch pages (services.batches), which check each step and record it.
    readonly_fields = ["status", "labelers", "groups"]


@admin.register(Task)
class TaskAdmin(SuperuserAuditedAdmin):
    list_display = ["id", "batch", "prompt", "k"]
    list_filter = ["batch"]
    raw_id_fields = ["prompt"]
    inlines = [TaskCompletionInline]


@admin.register(Assignment)
class AssignmentAdmin(SuperuserAuditedAdmin):
    list_display = ["id", "task", "labeler", "status", "lease_expires_at", "finished_at"]
    list_filter = ["status", "batch"]
    raw_id_fields = ["task", "batch", "labeler"]
    exclude = ["draft", "skip_reason"]  # the labeler's own


@admin.register(Demonstration)
class DemonstrationAdmin(SuperuserAuditedAdmin):
    list_display = ["id", "prompt", "author", "seconds_spent", "created_at"]
    raw_id_fields = ["prompt", "author", "assignment"]


class RatingInline(SuperuserWrites, admin.TabularInline):
    model = Rating
    extra = 0
    raw_id_fields = ["completion"]


@admin.register(Ranking)
class RankingAdmin(SuperuserAuditedAdmin):
    list_display = ["id", "task", "labeler", "all_unusable", "seconds_spent", "created_at"]
    raw_id_fields = ["assignment", "task", "labeler"]
    inlines = [RatingInline]


@admin.register(Comparison)
class ComparisonAdmin(SuperuserAuditedAdmin):
    list_display = ["id", "batch", "prompt", "better", "worse", "labeler"]
    list_filter = ["batch"]
    raw_id_fields = ["ranking", "batch", "prompt", "better", "worse", "labeler"]


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(SuperuserAuditedAdmin):
    """Snapshots are written by an export only (never added here: a row names the file it serves) and are
    immutable. A superuser's delete goes through snapshot_delete, which removes the file and records it."""

    list_display = ["id", "kind", "format", "row_count", "sha256", "created_at"]
    list_filter = ["kind", "format"]

    def has_add_permission(self, request: HttpRequest, *args: object) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: models.Model | None = None) -> bool:
        return False

    def delete_model(self, request, obj):
        try:
            snapshot_delete(snapshot=obj, actor=request.user)
        except ServiceError as exc:
            self.message_user(request, exc.message, level="error")

    def delete_queryset(self, request, queryset):
        for snapshot in queryset:
            self.delete_model(request, snapshot)


class RoleAuditingUserAdmin(AuditedAdmin, UserAdmin):
    """Django's user admin, audited; a role (group) given or taken here is also recorded as with role_add."""

    def user_change_password(self, request, id, form_url=""):
        """The admin's set-password page, which saves outside save_model: recorded (not the password)."""
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                audit_record(
                    actor=request.user,
                    action=Action.ADMIN_CHANGED,
                    target=self.get_object(request, unquote(id)),
                    details={"via": "admin", "fields": ["password"]},
                )
        return response

    def save_related(self, request, form, formsets, change):
        user = form.instance
        before = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True)) if change else set()
        super().save_related(request, form, formsets, change)  # saves the groups
        after = set(user.groups.filter(name__in=ROLES).values_list("name", flat=True))
        for action, roles in ((Action.ROLE_GRANTED, after - before), (Action.ROLE_REVOKED, before - after)):
            for role in sorted(roles):
                audit_record(
                    actor=request.user, action=action, target=user, details={"role": role, "via": "admin"}
                )


class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    """Django's group admin, audited: a group's permissions are what a role may do in this admin."""


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), RoleAuditingUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, AuditedGroupAdmin)
