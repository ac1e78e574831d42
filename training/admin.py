"""Models and runs in the Django admin, to read. Below superuser nothing here writes: runs start, retry
and cancel through the training pages and API. A superuser's writes are audited (audit.admin_writes)."""

from django.contrib import admin

from audit.admin_writes import SuperuserAuditedAdmin, SuperuserWrites

from .models import ModelVersion, ModelVersionSnapshot, TrainingRun


class ModelVersionSnapshotInline(SuperuserWrites, admin.TabularInline):
    model = ModelVersionSnapshot
    extra = 0


@admin.register(ModelVersion)
class ModelVersionAdmin(SuperuserAuditedAdmin):
    list_display = ["id", "name", "kind", "parent", "checkpoint", "created_at"]
    list_filter = ["kind"]
    inlines = [ModelVersionSnapshotInline]


@admin.register(TrainingRun)
class TrainingRunAdmin(SuperuserAuditedAdmin):
    list_display = ["id", "kind", "status", "progress_step", "progress_total", "created_at", "finished_at"]
    list_filter = ["kind", "status"]
    raw_id_fields = ["base_model", "reward_model", "output_model"]
