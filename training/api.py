"""Training over the REST API: start, watch and cancel runs; start and watch rounds.
(Read-only lists of runs and model versions live with the rest of the API under /api/.)"""

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import BasePermission
from rest_framework.response import Response
from rest_framework.views import APIView

from labeling.api.base import storable_json
from labeling.api.training import TrainingRunOutput
from labeling.errors import ServiceError
from labeling.models import DatasetSnapshot

from .access import may_train, may_view
from .models import ModelVersion, Round, RunKind, TrainingRun
from .services.rounds import round_start
from .services.runs import run_cancel, run_start


class MayView(BasePermission):
    message = "Only researchers and batch admins can see training."

    def has_permission(self, request, view):
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return may_view(request.user)
        return may_train(request.user)


def _error(exc: ServiceError) -> Response:
    code = (
        status.HTTP_503_SERVICE_UNAVAILABLE
        if exc.code == "queue_unavailable"
        else status.HTTP_400_BAD_REQUEST
    )
    return Response(exc.as_dict(), status=code)


class RunOutput(TrainingRunOutput):
    """The read API's run, plus what the run's owner needs to follow it."""

    class Meta(TrainingRunOutput.Meta):
        fields = [*TrainingRunOutput.Meta.fields, "log_tail", "cancel_requested", "round"]


class RunStartInput(serializers.Serializer):
    kind = serializers.ChoiceField(choices=RunKind.choices)
    base_model = serializers.PrimaryKeyRelatedField(queryset=ModelVersion.objects.all())
    reward_model = serializers.PrimaryKeyRelatedField(
        queryset=ModelVersion.objects.all(), required=False, allow_null=True
    )
    snapshots = serializers.PrimaryKeyRelatedField(queryset=DatasetSnapshot.objects.all(), many=True)
    config = serializers.DictField(required=False, default=dict, validators=[storable_json])


class RunStartApi(APIView):
    permission_classes = [MayView]

    @extend_schema(request=RunStartInput, responses={201: RunOutput})
    def post(self, request):
        data = RunStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            run = run_start(created_by=request.user, **data.validated_data)
        except ServiceError as exc:
            return _error(exc)
        return Response(RunOutput(run).data, status=status.HTTP_201_CREATED)


class RunDetailApi(APIView):
    permission_classes = [MayView]

    @extend_schema(responses=RunOutput)
    def get(self, request, pk: int):
        return Response(RunOutput(get_object_or_404(TrainingRun, pk=pk)).data)


class RunCancelApi(APIView):
    permission_classes = [MayView]

    @extend_schema(request=None, responses=RunOutput)
    def post(self, request, pk: int):
        try:
            run = run_cancel(run=get_object_or_404(TrainingRun, pk=pk), actor=request.user)
        except ServiceError as exc:
            return _error(exc)
        return Response(RunOutput(run).data)


class RoundOutput(serializers.ModelSerializer):
    class Meta:
        model = Round
        fields = [
            "id",
            "number",
            "method",
            "status",
            "step",
            "config",
            "state",
            "error",
            "batch",
            "created_at",
            "finished_at",
        ]


class RoundStartInput(serializers.Serializer):
    method = serializers.ChoiceField(choices=["ppo", "dpo"], default="ppo")
    k = serializers.IntegerField(min_value=2, max_value=9, default=4)
    prompt_limit = serializers.IntegerField(min_value=1, default=50)
    mix_sft = serializers.BooleanField(default=False)
    batch_status = serializers.ChoiceField(choices=["active", "draft"], default="active")
    batches = serializers.ListField(child=serializers.IntegerField(), required=False, default=list)
    stage_config = serializers.DictField(required=False, default=dict, validators=[storable_json])


class RoundStartApi(APIView):
    permission_classes = [MayView]

    @extend_schema(request=RoundStartInput, responses={201: RoundOutput})
    def post(self, request):
        data = RoundStartInput(data=request.data)
        data.is_valid(raise_exception=True)
        config = dict(data.validated_data)
        try:
            rnd = round_start(method=config.pop("method"), created_by=request.user, config=config)
        except ServiceError as exc:
            return _error(exc)
        return Response(RoundOutput(rnd).data, status=status.HTTP_201_CREATED)


class RoundDetailApi(APIView):
    permission_classes = [MayView]

    @extend_schema(responses=RoundOutput)
    def get(self, request, pk: int):
        return Response(RoundOutput(get_object_or_404(Round, pk=pk)).data)
