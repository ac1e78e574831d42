"""Training over the REST API (/api/v1/): model versions (read), training runs (list, read, start,
cancel), rounds (start, read) and the human evaluations (evaluation batches and their win rates, read).
Researchers start and stop work; batch admins and researchers read."""

from typing import TYPE_CHECKING, cast

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.base import ApiMixin, storable_json
from core.permissions import may_see_all, may_train, may_view
from labeling.models import Batch, DatasetSnapshot
from labeling.quality.api import EstimateSerializer
from training.ml.launch import LAUNCH_CONFIGS

from .evaluation.winrate import EvaluationResults, evaluation_results
from .models import ModelVersion, Round, RunKind, TrainingRun
from .services.rounds import round_start
from .services.runs import run_cancel, run_start

if TYPE_CHECKING:
    from django.contrib.auth.models import User


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
    roles = {"list": may_view, "retrieve": may_view}


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
            "launch_config",
            "progress_step",
            "progress_total",
            "metrics",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        ]


class RunOutput(TrainingRunOutput):
    """The list's run, plus what the run's owner needs to follow it."""

    class Meta(TrainingRunOutput.Meta):
        fields = [*TrainingRunOutput.Meta.fields, "log_tail", "cancel_requested", "round"]


# A shipped accelerate config by name (training/ml/launch/); the service checks it and applies the default.
def launch_config_input() -> serializers.CharField:
    return serializers.CharField(
        required=False,
        allow_blank=True,
        default="",
        help_text="A shipped accelerate config: "
        + ", ".join(LAUNCH_CONFIGS)
        + "; empty: the server's default.",
    )


class RunStartInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=RunKind.choices)
    base_model = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.all())
    reward_model = serializers.PrimaryKeyRelatedField(
        queryset=ModelVersion.objects.all(), required=False, allow_null=True
    )
    snapshots = serializers.PrimaryKeyRelatedField(queryset=DatasetSnapshot.objects.all(), many=True)
    config = serializers.DictField(required=False, default=dict, validators=[storable_json])
    launch_config = launch_config_input()


class TrainingRunViewSet(ApiMixin, viewsets.ReadOnlyModelViewSet):
    queryset = TrainingRun.objects.prefetch_related("snapshots")
    filterset_fields = ["kind", "status", "base_model"]
    roles = {"list": may_view, "retrieve": may_view, "create": may_train, "cancel": may_train}

    def get_serializer_class(self) -> type[TrainingRunOutput]:
        return TrainingRunOutput if self.action == "list" else RunOutput

    @extend_schema(request=RunStartInput, responses={201: RunOutput})
    def create(self, request: Request) -> Response:
        data = RunStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        created_by = cast("User", request.user)  # ByRole lets only signed-in researchers start runs
        run = run_start(created_by=created_by, **data.validated_data)
        return Response(RunOutput(run).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=None, responses=RunOutput)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        run = run_cancel(run=self.get_object(), actor=request.user)
        return Response(RunOutput(run).data)


class RoundStateOutput(serializers.Serializer):
    """What the round's finished steps produced (training.round_state.RoundState)."""

    done = serializers.ListField(child=serializers.CharField(), help_text="The steps finished, in order.")
    snapshots = serializers.DictField(
        child=serializers.IntegerField(), help_text="Export kind -> dataset snapshot id."
    )
    runs = serializers.DictField(
        child=serializers.ListField(child=serializers.IntegerField()), help_text="Step -> training run ids."
    )
    models = serializers.DictField(
        child=serializers.IntegerField(), help_text="sft, rm or policy -> model version id."
    )
    retry = serializers.CharField(help_text="The step a retry goes on from; empty when none is pending.")


# The model's choices, so the round's input and output share one enum in the schema (RoundMethodEnum).
ROUND_METHODS = cast("list[tuple[str, str]]", Round._meta.get_field("method").choices)  # declared: never None


class RoundOutput(serializers.ModelSerializer):
    state = RoundStateOutput(source="round_state", read_only=True)

    class Meta:
        model = Round
        fields = [
            "id",
            "number",
            "method",
            "status",
            "step",
            "config",
            "launch_config",
            "state",
            "error",
            "batch",
            "created_at",
            "finished_at",
        ]


class RoundStartInput(serializers.Serializer):
    method = serializers.ChoiceField(choices=ROUND_METHODS, default="ppo")
    k = serializers.IntegerField(min_value=2, max_value=9, default=4)
    prompt_limit = serializers.IntegerField(min_value=1, default=50)
    mix_sft = serializers.BooleanField(default=False)
    batch_status = serializers.ChoiceField(choices=["active", "draft"], default="active")
    batches = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    stage_config = serializers.DictField(required=False, default=dict, validators=[storable_json])
    launch_config = launch_config_input()


class RoundViewSet(ApiMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = RoundOutput
    queryset = Round.objects.all()
    roles = {"retrieve": may_view, "create": may_train}

    @extend_schema(request=RoundStartInput, responses={201: RoundOutput})
    def create(self, request: Request) -> Response:
        data = RoundStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        config = dict(data.validated_data)
        created_by = cast("User", request.user)  # ByRole lets only signed-in researchers start rounds
        rnd = round_start(method=config.pop("method"), created_by=created_by, config=config)
        return Response(RoundOutput(rnd).data, status=status.HTTP_201_CREATED)


# Human evaluation (training/evaluation/): the evaluation batches and their results.


class SourceResultSerializer(serializers.Serializer):
    model = serializers.CharField(source="source.key")
    # A declared field (SerializerMetaclass takes it out of the class), not the stubs' Field.label.
    label = serializers.CharField(source="source.label")  # type: ignore[assignment]
    model_version = serializers.IntegerField(source="source.model_version.pk", allow_null=True, default=None)
    win_rate = EstimateSerializer(allow_null=True, help_text="Against the baseline; ties count half.")
    wins = serializers.IntegerField()
    ties = serializers.IntegerField()
    losses = serializers.IntegerField()
    likert = EstimateSerializer()
    flags = serializers.DictField(child=EstimateSerializer())
    auto_eval = serializers.JSONField(allow_null=True)


class EvaluationResultsSerializer(serializers.Serializer):
    batch = serializers.IntegerField(source="batch.pk")
    name = serializers.CharField(source="batch.name")
    baseline = serializers.CharField(source="baseline.key")
    models = serializers.SerializerMethodField()
    tasks = serializers.IntegerField()
    rankings = serializers.IntegerField()
    overall = SourceResultSerializer(many=True)
    by_category = serializers.DictField(child=SourceResultSerializer(many=True))

    def get_models(self, obj: EvaluationResults) -> list[str]:
        return [s.key for s in obj.sources]


class EvaluationBatchSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    round_number = serializers.IntegerField()
    tasks = serializers.IntegerField(source="tasks.count")


class EvaluationListApi(ApiMixin, APIView):
    roles = {"get": may_see_all}
    filter_backends: list = []  # a list computed whole, not a queryset: no filters, no pages
    pagination_class = None

    @extend_schema(responses=EvaluationBatchSerializer(many=True))
    def get(self, request: Request) -> Response:
        batches = Batch.objects.filter(kind=Batch.Kind.EVALUATION).order_by("-pk")
        return Response(EvaluationBatchSerializer(batches, many=True).data)


class EvaluationResultsApi(ApiMixin, APIView):
    roles = {"get": may_see_all}

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "baseline",
                str,
                description="Model name; default: the SFT model, else the base model, else the oldest.",
            )
        ],
        responses=EvaluationResultsSerializer,
    )
    def get(self, request: Request, batch_id: int) -> Response:
        batch = get_object_or_404(Batch, pk=batch_id)
        results = evaluation_results(batch=batch, baseline=request.query_params.get("baseline"))
        return Response(EvaluationResultsSerializer(results).data)
