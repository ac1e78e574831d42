from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin

from audit.services import Action, audit_record

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
from .vocab import ROLES


@admin.register(Prompt)
class PromptAdmin(admin.ModelAdmin):
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
class CompletionAdmin(admin.ModelAdmin):
    list_display = ["id", "prompt", "model_version", "source_name", "created_at"]
    list_filter = ["source_name"]
    raw_id_fields = ["prompt", "model_version"]


class TaskCompletionInline(admin.TabularInline):
    model = TaskCompletion
    raw_id_fields = ["completion", "prompt"]
    extra = 0


@admin.register(Batch)
class BatchAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "kind", "status", "overlap", "round_number", "deadline", "created_at"]
    list_filter = ["kind", "status", "round_number"]
    filter_horizontal = ["labelers", "groups"]
    search_fields = ["name"]


@admin.register(Task)
class TaskAdmin(admin.ModelAdmin):
    list_display = ["id", "batch", "prompt", "k"]
    list_filter = ["batch"]
    raw_id_fields = ["prompt"]
    inlines = [TaskCompletionInline]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "labeler", "status", "lease_expires_at", "finished_at"]
    list_filter = ["status", "batch"]
    raw_id_fields = ["task", "batch", "labeler"]


@admin.register(Demonstration)
class DemonstrationAdmin(admin.ModelAdmin):
    list_display = ["id", "prompt", "author", "seconds_spent", "created_at"]
    raw_id_fields = ["prompt", "author", "assignment"]


class RatingInline(admin.TabularInline):
    model = Rating
    extra = 0
    raw_id_fields = ["completion"]


@admin.register(Ranking)
class RankingAdmin(admin.ModelAdmin):
    list_display = ["id", "task", "labeler", "all_unusable", "seconds_spent", "created_at"]
    raw_id_fields = ["assignment", "task", "labeler"]
    inlines = [RatingInline]


@admin.register(Comparison)
class ComparisonAdmin(admin.ModelAdmin):
    list_display = ["id", "batch", "prompt", "better", "worse", "labeler"]
    list_filter = ["batch"]
    raw_id_fields = ["ranking", "batch", "prompt", "better", "worse", "labeler"]


@admin.register(DatasetSnapshot)
class DatasetSnapshotAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "format", "row_count", "sha256", "created_at"]
    list_filter = ["kind", "format"]

    def get_readonly_fields(self, request, obj=None):
        # Snapshots are immutable once written.
        return [f.name for f in self.model._meta.fields] if obj else []


class RoleAuditingUserAdmin(UserAdmin):
    """Django's user admin; a role (group) given or taken here lands in the audit log, as with role_add."""

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


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), RoleAuditingUserAdmin)
