"""Read-only API of the quality numbers (under /api/v1/quality/).

GET agreement/                  the team's agreement (rankings, Likert, flags); ?batch=ID (repeatable)
GET labelers/                   every labeler's numbers; ?batch=ID
GET labelers/<user id>/         one labeler's numbers (a labeler may read only their own)
Batch admins and researchers read everything; labelers only their own numbers (403 otherwise).
The evaluation results are the training side's (training/api.py).
"""

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.api.base import ApiMixin
from core.permissions import any_role, may_see_all, require_see_labeler

from .dashboard import labeler_stats, team_report

BATCH_PARAM = OpenApiParameter(
    "batch", int, many=True, description="Only these batches (repeat the parameter)."
)


class EstimateSerializer(serializers.Serializer):
    value = serializers.FloatField(allow_null=True)
    low = serializers.FloatField(allow_null=True, help_text="95% interval, bootstrap over tasks.")
    high = serializers.FloatField(allow_null=True)
    numerator = serializers.FloatField()
    denominator = serializers.FloatField()
    tasks = serializers.IntegerField()


class RankingAgreementSerializer(serializers.Serializer):
    overall = EstimateSerializer(help_text="Pairwise agreement: agreeing / compared completion pairs.")
    kendall_tau = EstimateSerializer(help_text="Mean Kendall's tau-b over labeler pairs per task.")
    alpha_ordinal = serializers.FloatField(allow_null=True)
    by_batch = serializers.DictField(child=EstimateSerializer())
    by_category = serializers.DictField(child=EstimateSerializer())
    by_labeler = serializers.DictField(child=EstimateSerializer())
    rankings = serializers.IntegerField()
    tasks_with_several = serializers.IntegerField()


class LikertAgreementSerializer(serializers.Serializer):
    pairs = serializers.IntegerField()
    exact = serializers.FloatField(allow_null=True)
    within_one = serializers.FloatField(allow_null=True)
    mean_abs_diff = serializers.FloatField(allow_null=True)
    alpha_ordinal = serializers.FloatField(allow_null=True)


class FlagAgreementSerializer(serializers.Serializer):
    flag = serializers.CharField()
    # A declared field, not Field.label: the serializer metaclass pops it from the class (stubs can't tell).
    label = serializers.CharField()  # type: ignore[assignment]
    pairs = serializers.IntegerField()
    agreement = serializers.FloatField(allow_null=True)
    rate = serializers.FloatField(allow_null=True)
    alpha_nominal = serializers.FloatField(allow_null=True)


class TeamReportSerializer(serializers.Serializer):
    rankings = RankingAgreementSerializer()
    likert = LikertAgreementSerializer()
    flags = FlagAgreementSerializer(many=True)


class LabelerStatsSerializer(serializers.Serializer):
    labeler_id = serializers.IntegerField()
    username = serializers.CharField()
    submitted = serializers.IntegerField()
    rankings = serializers.IntegerField()
    median_seconds = serializers.FloatField(allow_null=True)
    agreement = EstimateSerializer()
    gold_accuracy = EstimateSerializer()
    flag_rates = serializers.DictField(child=serializers.FloatField(allow_null=True))
    fast = serializers.IntegerField()
    fast_share = serializers.FloatField(allow_null=True)
    over_time = serializers.ListField(child=serializers.DictField())


def _batches(request: Request) -> list[int] | None:
    values = request.query_params.getlist("batch")
    if not values:
        return None
    try:
        return [int(v) for v in values]
    except ValueError:
        raise ValidationError({"batch": "give batch ids (whole numbers)."}) from None


class AgreementApi(ApiMixin, APIView):
    roles = {"get": may_see_all}

    @extend_schema(parameters=[BATCH_PARAM], responses=TeamReportSerializer)
    def get(self, request):
        return Response(TeamReportSerializer(team_report(batches=_batches(request))).data)


class LabelerListApi(ApiMixin, APIView):
    roles = {"get": may_see_all}
    filter_backends: list = []  # a list computed whole, not a queryset: no filters, no pages
    pagination_class = None

    @extend_schema(parameters=[BATCH_PARAM], responses=LabelerStatsSerializer(many=True))
    def get(self, request):
        return Response(LabelerStatsSerializer(labeler_stats(batches=_batches(request)), many=True).data)


class LabelerDetailApi(ApiMixin, APIView):
    roles = {"get": any_role}  # and a labeler only their own (the object check below)

    @extend_schema(parameters=[BATCH_PARAM], responses=LabelerStatsSerializer)
    def get(self, request: Request, user_id: int) -> Response:
        require_see_labeler(request.user, user_id)
        user = get_object_or_404(get_user_model(), pk=user_id)
        [stats] = labeler_stats(batches=_batches(request), labeler_ids=[user.pk])
        return Response(LabelerStatsSerializer(stats).data)
