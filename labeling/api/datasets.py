"""Dataset snapshots: researchers export, list and download; batch admins may list them."""

from typing import TYPE_CHECKING

from django.http import FileResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.reverse import reverse

from core.api.base import ApiMixin
from core.errors import ServiceError
from core.permissions import admin_or_researcher
from core.roles import is_researcher

from ..models import DatasetSnapshot, SnapshotFormat, SnapshotKind
from ..services.exports import snapshot_delete, snapshot_download_name, snapshot_open
from ..services.jobs import job_start_export
from .jobs import JobOutput, job_accepted

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# A snapshot's file that cannot be served: gone or refused is 404, storage that cannot be read is 503.
FILE_ERROR_STATUS = {
    "file_missing": status.HTTP_404_NOT_FOUND,
    "path_outside_media": status.HTTP_404_NOT_FOUND,
    "storage_unavailable": status.HTTP_503_SERVICE_UNAVAILABLE,
}


class SnapshotOutput(serializers.ModelSerializer):
    created_by: serializers.SlugRelatedField["User"] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    download_url = serializers.SerializerMethodField()
    contents = serializers.JSONField(
        read_only=True,
        help_text='What it holds: {"batches": {batch id: lines}, "outside_batches": lines from no batch}; '
        "empty for snapshots exported before this was recorded.",
    )

    class Meta:
        model = DatasetSnapshot
        fields = [
            "id",
            "kind",
            "format",
            "filters",
            "row_count",
            "contents",
            "sha256",
            "created_by",
            "created_at",
            "download_url",
        ]

    def get_download_url(self, snapshot: DatasetSnapshot) -> str:
        return reverse("api:dataset-download", args=[snapshot.pk], request=self.context.get("request"))


class SnapshotInput(serializers.Serializer):
    """filters: batches (ids), split, category, created_after, created_before, labelers (ids or usernames),
    rankings ("all" or "consensus", rm kinds), min_agreement (0..1, rm kinds), include_pii (bool).
    format: "standard" (texts as strings) or "conversational" (TRL's conversational format: chat messages)."""

    kind = serializers.ChoiceField(choices=SnapshotKind.choices)
    format = serializers.ChoiceField(choices=SnapshotFormat.choices, default=SnapshotFormat.STANDARD)
    filters = serializers.DictField(required=False, default=dict)


class DatasetViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = SnapshotOutput
    queryset = DatasetSnapshot.objects.select_related("created_by")
    filterset_fields = ["kind"]
    roles = {
        "list": admin_or_researcher,
        "retrieve": admin_or_researcher,
        "create": is_researcher,
        "destroy": is_researcher,
        "download": is_researcher,
    }

    @extend_schema(request=SnapshotInput, responses={202: JobOutput})
    def create(self, request):
        """Start an export job (202; its snapshot_url once it succeeded). The kind, format and filters are
        checked first (400 naming the field); the same filters over the same data give the same bytes."""
        data = SnapshotInput(data=request.data)
        data.is_valid(raise_exception=True)
        job = job_start_export(created_by=request.user, **data.validated_data)
        return job_accepted(job, request)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        """Delete a snapshot; refused (400, code "protected") while a model version was trained on it."""
        snapshot_delete(snapshot=self.get_object(), actor=request.user)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        responses={
            (200, "application/jsonl"): OpenApiResponse(OpenApiTypes.BINARY),
            404: OpenApiResponse(description='The file is missing (code "file_missing") or refused.'),
            503: OpenApiResponse(description='The storage cannot be read (code "storage_unavailable").'),
        }
    )
    @action(detail=True, methods=["get"])
    def download(self, request, pk=None):
        """The snapshot's JSONL file, with its sha256 in X-Checksum-SHA256."""
        snapshot = self.get_object()
        try:
            file = snapshot_open(snapshot)
        except ServiceError as exc:
            return Response(
                exc.as_dict(), status=FILE_ERROR_STATUS.get(exc.code, status.HTTP_400_BAD_REQUEST)
            )
        response = FileResponse(
            file,
            as_attachment=True,
            filename=snapshot_download_name(snapshot),
            content_type="application/jsonl",
        )
        response["X-Checksum-SHA256"] = snapshot.sha256
        return response
