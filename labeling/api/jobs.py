"""Import and export jobs: POST /api/v1/imports/... and POST /api/v1/datasets/ answer 202 with the job; GET the
job's url for its status, progress and outcome. Batch admins see import jobs, researchers export jobs."""

from typing import TYPE_CHECKING, cast

from django.db.models import QuerySet
from rest_framework import serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse

from core.api.base import ApiMixin
from core.permissions import admin_or_researcher

from ..models import Job
from ..services.jobs import jobs_visible_to

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class JobOutput(serializers.ModelSerializer):
    """params: what was asked, checked (an export's filters in their canonical form). progress_done of progress_total: bytes checked then lines stored (imports), rows written
    (exports, total 0 until done). On failure: message, error_code, and for a rejected file "errors"
    [{"line", "field", "message"}] (the first 50) and error_count."""

    url = serializers.SerializerMethodField()
    created_by: serializers.SlugRelatedField["User"] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    batch_url = serializers.SerializerMethodField()
    snapshot_url = serializers.SerializerMethodField()
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = Job
        fields = [
            "id",
            "url",
            "kind",
            "status",
            "params",
            "progress_done",
            "progress_total",
            "message",
            "error_code",
            "errors",
            "error_count",
            "result",
            "batch",
            "batch_url",
            "snapshot",
            "snapshot_url",
            "download_url",
            "upload_name",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]

    def _url(self, name: str, pk: int | None) -> str | None:
        return None if pk is None else reverse(name, args=[pk], request=self.context.get("request"))

    def get_url(self, job: Job) -> str:
        return reverse("api:job-detail", args=[job.pk], request=self.context.get("request"))

    def get_batch_url(self, job: Job) -> str | None:
        return self._url("api:batch-detail", job.batch_id)

    def get_snapshot_url(self, job: Job) -> str | None:
        return self._url("api:dataset-detail", job.snapshot_id)

    def get_download_url(self, job: Job) -> str | None:
        return self._url("api:dataset-download", job.snapshot_id)


def job_accepted(job: Job, request: Request) -> Response:
    """202 Accepted: the job, with its address in Location."""
    data = JobOutput(job, context={"request": request}).data
    return Response(data, status=status.HTTP_202_ACCEPTED, headers={"Location": data["url"]})


class JobViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = JobOutput
    filterset_fields = ["kind", "status"]
    roles = {"list": admin_or_researcher, "retrieve": admin_or_researcher}

    def get_queryset(self) -> QuerySet[Job]:
        if self.for_schema:
            return Job.objects.none()
        return jobs_visible_to(cast("User", self.request.user))  # ByRole: admin_or_researcher, so signed in
