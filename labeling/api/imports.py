"""Imports over the API (batch admins): multipart uploads of a prompts file or a completions file, each run
as a job (answered 202 with the job; see jobs.py)."""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.base import ApiMixin, BatchSettingsFields
from core.errors import ServiceError
from core.roles import is_batch_admin

from ..services.imports import FORMATS, PII_MODES
from ..services.jobs import job_start_completion_import, job_start_prompt_import
from .jobs import JobOutput, job_accepted


class BatchSettingsInput(BatchSettingsFields):
    batch_name = serializers.CharField(max_length=200, required=False)

    def batch_settings(self) -> dict:
        v = self.validated_data
        return {
            "name": v.get("batch_name", ""),
            "overlap": v["overlap"],
            "lease_minutes": v["lease_minutes"],
            "instructions": v["instructions"],
            "deadline": v["deadline"],
            "labelers": v["labelers"],
            "groups": v["groups"],
        }


class PromptImportInput(BatchSettingsInput):
    """A JSONL or CSV file of prompts. With batch_name, the prompts it creates become a demonstration batch."""

    file = serializers.FileField()
    format = serializers.ChoiceField(choices=FORMATS, required=False)
    pii = serializers.ChoiceField(choices=PII_MODES, default="flag")


class CompletionImportInput(BatchSettingsInput):
    """A JSONL file of completions; they become a ranking (or evaluation) batch named batch_name."""

    file = serializers.FileField()
    kind = serializers.ChoiceField(choices=["ranking", "evaluation"], default="ranking")
    pii = serializers.ChoiceField(choices=PII_MODES, default="flag")
    batch_name = serializers.CharField(max_length=200)


def _started(start, request, **kwargs):
    """202 with the job; a file over the size limit is 413 Payload Too Large."""
    try:
        job = start(created_by=request.user, **kwargs)
    except ServiceError as exc:
        if exc.code == "file_too_large":
            return Response(exc.as_dict(), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
        raise
    return job_accepted(job, request)


TOO_LARGE = OpenApiResponse(description='The file is over IMPORT_MAX_FILE_BYTES (code "file_too_large").')


class PromptImportApi(ApiMixin, APIView):
    """Starts an import job (202): GET its url for the progress and the outcome. A bad file fails the
    job with "errors": [{"line", "field", "message"}], and nothing is imported."""

    parser_classes = [MultiPartParser, FormParser]
    roles = {"post": is_batch_admin}

    @extend_schema(request=PromptImportInput, responses={202: JobOutput, 413: TOO_LARGE})
    def post(self, request):
        data = PromptImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _started(
            job_start_prompt_import,
            request,
            upload=data.validated_data["file"],
            format=data.validated_data.get("format") or "",
            pii=data.validated_data["pii"],
            batch=data.batch_settings() if data.validated_data.get("batch_name") else None,
        )


class CompletionImportApi(ApiMixin, APIView):
    """Starts an import job (202): GET its url for the progress and the outcome. A bad file fails the
    job with "errors": [{"line", "field", "message"}], and nothing is imported."""

    parser_classes = [MultiPartParser, FormParser]
    roles = {"post": is_batch_admin}

    @extend_schema(request=CompletionImportInput, responses={202: JobOutput, 413: TOO_LARGE})
    def post(self, request):
        data = CompletionImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        return _started(
            job_start_completion_import,
            request,
            upload=data.validated_data["file"],
            batch={**data.batch_settings(), "kind": data.validated_data["kind"]},
            pii=data.validated_data["pii"],
        )
