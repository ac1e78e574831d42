"""Prompts, completions and demonstrations. Batch admins and researchers see all; a labeler sees only the
prompts and demonstrations they wrote (and no completions outside their tasks)."""

from typing import TYPE_CHECKING, cast

import django_filters
from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.response import Response

from core.api.base import ApiMixin, UtcDateTimeFilter, storable_json
from core.permissions import admin_or_researcher, any_role
from core.roles import is_batch_admin, is_labeler

from ..models import Completion, Demonstration, Prompt
from ..services.prompts import prompt_create
from ..vocab import Category, PromptSource

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class PromptOutput(serializers.ModelSerializer):
    author: serializers.SlugRelatedField["User"] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )

    class Meta:
        model = Prompt
        fields = [
            "id",
            "text",
            "category",
            "source",
            "author",
            "origin_user",
            "split",
            "pii_flag",
            "metadata",
            "created_at",
        ]


class PromptInput(serializers.Serializer):
    text = serializers.CharField(trim_whitespace=False)
    category = serializers.ChoiceField(choices=Category.choices)
    # A declared field, not Field.source: the serializer metaclass pops it from the class (stubs can't tell).
    source = serializers.ChoiceField(  # type: ignore[assignment]
        choices=PromptSource.choices, default=PromptSource.IMPORTED
    )
    # Left out or blank: the same (the prompt came from no named user), so the schema's default is valid.
    origin_user = serializers.CharField(max_length=200, required=False, default="", allow_blank=True)
    metadata = serializers.DictField(required=False, default=dict, validators=[storable_json])


class PromptFilter(django_filters.FilterSet):
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Prompt
        fields = ["split", "category", "source", "pii_flag", "origin_user"]


class PromptViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    """Prompts. POST (batch admins) stores one prompt through the usual hygiene (dedup, cap, split, PII)."""

    serializer_class = PromptOutput
    filterset_class = PromptFilter
    roles = {"list": any_role, "retrieve": any_role, "create": is_batch_admin}

    def get_queryset(self) -> QuerySet[Prompt]:
        prompts = Prompt.objects.select_related("author")
        if self.for_schema or admin_or_researcher(self.request.user):
            return prompts
        if not is_labeler(self.request.user):
            return prompts.none()
        return prompts.filter(author=cast("User", self.request.user))  # a labeler: signed in

    @extend_schema(request=PromptInput, responses={201: PromptOutput})
    def create(self, request):
        data = PromptInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        values["origin_user"] = values["origin_user"] or request.user.get_username()
        prompt = prompt_create(author=request.user, **values)
        return Response(PromptOutput(prompt).data, status=status.HTTP_201_CREATED)


class CompletionOutput(serializers.ModelSerializer):
    class Meta:
        model = Completion
        fields = ["id", "prompt", "text", "model_version", "source_name", "created_at"]


class CompletionViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = CompletionOutput
    queryset = Completion.objects.all()
    filterset_fields = ["prompt", "model_version", "source_name"]
    roles = {"list": admin_or_researcher, "retrieve": admin_or_researcher}


class DemonstrationOutput(serializers.ModelSerializer):
    author: serializers.SlugRelatedField["User"] = serializers.SlugRelatedField(
        slug_field="username", read_only=True
    )
    task = serializers.IntegerField(
        source="assignment.task_id", read_only=True, allow_null=True, default=None
    )

    class Meta:
        model = Demonstration
        fields = ["id", "prompt", "task", "author", "text", "seconds_spent", "created_at"]


class DemonstrationFilter(django_filters.FilterSet):
    # Ids, not model choices: the browsable API would list every prompt in the filter form's choices.
    prompt = django_filters.NumberFilter(field_name="prompt")
    author = django_filters.CharFilter(field_name="author__username")
    batch = django_filters.NumberFilter(field_name="assignment__batch")
    created_after = UtcDateTimeFilter(field_name="created_at", lookup_expr="gte")
    created_before = UtcDateTimeFilter(field_name="created_at", lookup_expr="lt")

    class Meta:
        model = Demonstration
        fields = ["prompt"]


class DemonstrationViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = DemonstrationOutput
    filterset_class = DemonstrationFilter
    roles = {"list": any_role, "retrieve": any_role}

    def get_queryset(self) -> QuerySet[Demonstration]:
        demonstrations = Demonstration.objects.select_related("author", "assignment")
        if self.for_schema or admin_or_researcher(self.request.user):
            return demonstrations
        return demonstrations.filter(author=cast("User", self.request.user))  # ByRole: any_role, so signed in
