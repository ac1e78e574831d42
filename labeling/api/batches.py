"""Batches: labelers see the batches they may work on; batch admins create and run them; researchers read."""

from dataclasses import asdict
from typing import TYPE_CHECKING

from django.contrib.auth import get_user_model
from django.db.models import Count, Prefetch, Q, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from core.api.base import ApiMixin, BatchSettingsFields, SlugLookupField
from core.api.schema import AnyOf
from core.permissions import admin_or_researcher, any_role
from core.roles import is_batch_admin, is_labeler

from ..models import Batch, Completion
from ..selectors.batches import batch_labeler_stats, batch_progress
from ..services import batches as service
from ..vocab import Category, PromptSource, Split

if TYPE_CHECKING:
    from django.contrib.auth.models import Group, User

# The model versions completions come from live in the training side's registry; reached through the
# relation, so labeling does not import training (the layers run training -> labeling -> core -> audit).
ModelVersion = Completion.model_version.field.related_model


class BatchOutput(serializers.ModelSerializer):
    labelers: serializers.SlugRelatedField["User"] = serializers.SlugRelatedField(
        slug_field="username", many=True, read_only=True
    )
    groups: serializers.SlugRelatedField["Group"] = serializers.SlugRelatedField(
        slug_field="name", many=True, read_only=True
    )
    created_by: serializers.SlugRelatedField["User"] = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True
    )
    task_count = serializers.SerializerMethodField()

    class Meta:
        model = Batch
        fields = [
            "id",
            "name",
            "kind",
            "status",
            "overlap",
            "lease_minutes",
            "instructions",
            "deadline",
            "round_number",
            "model_version",
            "labelers",
            "groups",
            "created_by",
            "created_at",
            "task_count",
        ]

    def get_task_count(self, batch: Batch) -> int:
        counted = getattr(batch, "task_count", None)  # annotated on lists
        return batch.tasks.count() if counted is None else counted


class LabelerBatchOutput(serializers.ModelSerializer):
    """What a labeler sees of a batch: no list of colleagues."""

    class Meta:
        model = Batch
        fields = ["id", "name", "kind", "status", "overlap", "lease_minutes", "instructions", "deadline"]


class BatchForRole(AnyOf):
    """A batch as batch admins and researchers see it (BatchOutput), or as a labeler does."""

    shapes = (BatchOutput, LabelerBatchOutput)


class PromptFiltersInput(serializers.Serializer):
    split = serializers.ListField(child=serializers.ChoiceField(choices=Split.choices), required=False)
    category = serializers.ListField(child=serializers.ChoiceField(choices=Category.choices), required=False)
    # A declared field, not Field.source: the serializer metaclass pops it from the class (stubs can't tell).
    source = serializers.ListField(  # type: ignore[assignment]
        child=serializers.ChoiceField(choices=PromptSource.choices), required=False
    )
    created_after = serializers.DateTimeField(required=False)
    created_before = serializers.DateTimeField(required=False)
    limit = serializers.IntegerField(min_value=1, required=False)


class CompletionFiltersInput(serializers.Serializer):
    model_version = serializers.PrimaryKeyRelatedField(
        queryset=ModelVersion._default_manager.all(), required=False
    )
    source_name = serializers.CharField(required=False)


class BatchCreateInput(BatchSettingsFields):
    """Settings, and where the tasks come from: `task_count` (prompt writing), `prompt_filters`
    (demonstration, ranking, evaluation) and `completion_filters` (ranking, evaluation)."""

    name = serializers.CharField(max_length=200)
    kind = serializers.ChoiceField(choices=Batch.Kind.choices)
    status = serializers.ChoiceField(choices=["draft", "active", "paused"], default="active")
    task_count = serializers.IntegerField(required=False, allow_null=True, default=None)
    prompt_filters = PromptFiltersInput(required=False, default=dict)
    completion_filters = CompletionFiltersInput(required=False, default=dict)


class LabelersInput(serializers.Serializer):
    add = SlugLookupField(
        slug_field="username",
        many=True,
        required=False,
        default=list,
        queryset=get_user_model().objects.all(),
    )
    remove = SlugLookupField(
        slug_field="username",
        many=True,
        required=False,
        default=list,
        queryset=get_user_model().objects.all(),
    )


class ProgressOutput(serializers.Serializer):
    tasks = serializers.IntegerField()
    tasks_done = serializers.IntegerField()
    labels_wanted = serializers.IntegerField()
    labels_submitted = serializers.IntegerField()
    labels_in_flight = serializers.IntegerField()
    labels_needed = serializers.IntegerField()
    skipped = serializers.IntegerField()
    labelers = serializers.ListField(child=serializers.DictField())


@extend_schema_view(
    list=extend_schema(responses=BatchForRole), retrieve=extend_schema(responses=BatchForRole)
)
class BatchViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    """Batches. Labelers list the batches they may work on; batch admins create, pause, resume, close
    and change who works on a batch; batch admins and researchers see progress."""

    filterset_fields = ["kind", "status", "round_number"]
    roles = {
        "list": any_role,
        "retrieve": any_role,
        "create": is_batch_admin,
        "pause": is_batch_admin,
        "resume": is_batch_admin,
        "close": is_batch_admin,
        "labelers": is_batch_admin,
        "progress": admin_or_researcher,
    }

    def get_queryset(self) -> QuerySet[Batch]:
        user = self.request.user
        if self.for_schema or admin_or_researcher(user):
            # What BatchOutput shows: the labelers' and groups' names, the creator, the number of tasks.
            return (
                Batch.objects.prefetch_related(
                    Prefetch("labelers", queryset=get_user_model().objects.only("username")), "groups"
                )
                .select_related("created_by")
                .annotate(task_count=Count("tasks", distinct=True))
            )
        if not is_labeler(user):
            return Batch.objects.none()
        # LabelerBatchOutput shows the batch's own fields only.
        return Batch.objects.filter(Q(labelers=user) | Q(groups__in=user.groups.all())).distinct()

    def get_serializer_class(self):
        if self.for_schema or admin_or_researcher(self.request.user):
            return BatchOutput
        return LabelerBatchOutput

    @extend_schema(request=BatchCreateInput, responses={201: BatchOutput})
    def create(self, request):
        data = BatchCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        values = dict(data.validated_data)
        prompt_filters = dict(values.pop("prompt_filters"))
        completion_filters = dict(values.pop("completion_filters"))
        batch = service.batch_create_from_prompts(
            prompt_filters=prompt_filters,
            completion_filters=completion_filters,
            created_by=request.user,
            **values,
        )
        return Response(BatchOutput(batch).data, status=status.HTTP_201_CREATED)

    def _transition(self, request: Request, name: str) -> Response:
        batch = service.batch_transition(batch=self.get_object(), action=name, actor=request.user)
        return Response(BatchOutput(batch).data)

    @extend_schema(request=None, responses=BatchOutput)
    @action(detail=True, methods=["post"])
    def pause(self, request, pk=None):
        return self._transition(request, "pause")

    @extend_schema(request=None, responses=BatchOutput)
    @action(detail=True, methods=["post"])
    def resume(self, request, pk=None):
        return self._transition(request, "resume")

    @extend_schema(request=None, responses=BatchOutput)
    @action(detail=True, methods=["post"])
    def close(self, request, pk=None):
        return self._transition(request, "close")

    @extend_schema(request=LabelersInput, responses=BatchOutput)
    @action(detail=True, methods=["post"])
    def labelers(self, request, pk=None):
        """Add and remove labelers (by username). Removed labelers' live leases end now."""
        batch = self.get_object()
        data = LabelersInput(data=request.data)
        data.is_valid(raise_exception=True)
        if data.validated_data["add"]:
            service.batch_labelers_add(batch=batch, users=data.validated_data["add"], actor=request.user)
        if data.validated_data["remove"]:
            service.batch_labelers_remove(
                batch=batch, users=data.validated_data["remove"], actor=request.user
            )
        return Response(BatchOutput(Batch.objects.get(pk=batch.pk)).data)

    @extend_schema(responses=ProgressOutput)
    @action(detail=True, methods=["get"])
    def progress(self, request, pk=None):
        """Tasks done, labels submitted / in flight / still needed, and per-labeler counts and median seconds."""
        batch = self.get_object()
        labelers = [asdict(s) for s in batch_labeler_stats(batch=batch)]
        return Response({**asdict(batch_progress(batch=batch)), "labelers": labelers})
