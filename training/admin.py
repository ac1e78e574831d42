from django.contrib import admin

from .models import ModelVersion, ModelVersionSnapshot, TrainingRun


class ModelVersionSnapshotInline(admin.TabularInline):
    model = ModelVersionSnapshot
    extra = 0


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "kind", "parent", "checkpoint", "created_at"]
    list_filter = ["kind"]
    inlines = [ModelVersionSnapshotInline]


@admin.register(TrainingRun)
class TrainingRunAdmin(admin.ModelAdmin):
    list_display = ["id", "kind", "status", "progress_step", "progress_total", "created_at", "finished_at"]
    list_filter = ["kind", "status"]
    raw_id_fields = ["base_model", "reward_model", "output_model"]
