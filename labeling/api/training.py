"""Model versions and training runs, read only (the loop writes them; starting runs is under /training/api/)."""

from rest_framework import serializers, viewsets

from training.models import ModelVersion, TrainingRun

from .base import ApiMixin, admin_or_researcher


class ModelVersionOutput(serializers.ModelSerializer):
    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "name",
            "kind",
            "parent",
            "snapshots",
            "checkpoint",
            "metrics",
            "config",
            "created_at",
        ]


class ModelVersionViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = ModelVersionOutput
    queryset = ModelVersion.objects.prefetch_related("snapshots")
    filterset_fields = ["kind", "parent"]
    roles = {"list": admin_or_researcher, "retrieve": admin_or_researcher}


class TrainingRunOutput(serializers.ModelSerializer):
    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "kind",
            "status",
            "config",
            "base_model",
            "reward_model",
            "snapshots",
            "output_model",
            "progress_step",
            "progress_total",
            "metrics",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]


class TrainingRunViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = TrainingRunOutput
    queryset = TrainingRun.objects.prefetch_related("snapshots")
    filterset_fields = ["kind", "status", "base_model"]
    roles = {"list": admin_or_researcher, "retrieve": admin_or_researcher}
