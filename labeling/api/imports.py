"""Imports over the API (batch admins): multipart uploads of a prompts file or a completions file."""

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.response import Response
from rest_framework.views import APIView

from ..roles import is_batch_admin
from ..services.imports import FORMATS, PII_MODES, completions_import, prompts_import
from .base import ApiMixin, BatchSettingsFields


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


class PromptImportOutput(serializers.Serializer):
    lines = serializers.IntegerField()
    created = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    capped = serializers.IntegerField()
    pii_flagged = serializers.IntegerField()
    pii_scrubbed = serializers.IntegerField()
    batch = serializers.IntegerField(source="batch.pk", allow_null=True, default=None)


class CompletionImportOutput(serializers.Serializer):
    lines = serializers.IntegerField()
    prompts_created = serializers.IntegerField()
    completions_created = serializers.IntegerField()
    tasks_created = serializers.IntegerField()
    already_imported = serializers.IntegerField()
    batch = serializers.IntegerField(source="batch.pk", allow_null=True, default=None)


class PromptImportApi(ApiMixin, APIView):
    """Errors: 400 with "errors": [{"line", "field", "message"}] and nothing imported."""

    parser_classes = [MultiPartParser, FormParser]
    roles = {"post": is_batch_admin}

    @extend_schema(request=PromptImportInput, responses={201: PromptImportOutput})
    def post(self, request):
        data = PromptImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        fmt = data.validated_data.get("format") or (
            "csv" if upload.name.lower().endswith(".csv") else "jsonl"
        )
        batch = data.batch_settings() if data.validated_data.get("batch_name") else None
        result = prompts_import(
            file=upload,
            format=fmt,
            pii=data.validated_data["pii"],
            created_by=request.user,
            demonstration_batch=batch,
        )
        return Response(PromptImportOutput(result).data, status=status.HTTP_201_CREATED)


class CompletionImportApi(ApiMixin, APIView):
    """Errors: 400 with "errors": [{"line", "field", "message"}] and nothing imported."""

    parser_classes = [MultiPartParser, FormParser]
    roles = {"post": is_batch_admin}

    @extend_schema(request=CompletionImportInput, responses={201: CompletionImportOutput})
    def post(self, request):
        data = CompletionImportInput(data=request.data)
        data.is_valid(raise_exception=True)
        batch = {**data.batch_settings(), "kind": data.validated_data["kind"]}
        result = completions_import(
            file=data.validated_data["file"],
            batch=batch,
            pii=data.validated_data["pii"],
            created_by=request.user,
        )
        return Response(CompletionImportOutput(result).data, status=status.HTTP_201_CREATED)
