"""The one REST API, under /api/v1/: labeling, quality, training and the registry, API tokens, the OpenAPI
schema and its Swagger UI. It lives in config because it imports both apps' views (core knows neither)."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import APIRootView, DefaultRouter

from core.api.base import ApiMixin
from core.api.schema import ApiSchemaGenerator
from core.permissions import signed_in
from labeling.api import batches, catalog, datasets, imports, jobs, work
from labeling.api.auth import (
    LogOutEverywhereApi,
    TeamTokenListApi,
    TokenListApi,
    TokenObtainApi,
    TokenRevokeApi,
)
from labeling.quality import api as quality
from training import api as training

app_name = "api"


# The root, the schema and its viewers are for signed-in users (anonymous visitors see the login page only).
class ApiRoot(ApiMixin, APIRootView):  # the class DefaultRouter.APIRootView names
    roles = {"get": signed_in}


class SchemaApi(ApiMixin, SpectacularAPIView):
    generator_class = ApiSchemaGenerator
    roles = {"get": signed_in}


class DocsApi(ApiMixin, SpectacularSwaggerSplitView):
    url_name = "api:schema"
    roles = {"get": signed_in}


router = DefaultRouter()
router.APIRootView = ApiRoot
# No '/api/v1/prompts.json' style routes: several actions do not take their `format` kwarg (a 500), and
# '?format=api' or an Accept header chooses the renderer just as well.
router.include_format_suffixes = False
router.register("prompts", catalog.PromptViewSet, basename="prompt")
router.register("completions", catalog.CompletionViewSet, basename="completion")
router.register("demonstrations", catalog.DemonstrationViewSet, basename="demonstration")
router.register("batches", batches.BatchViewSet, basename="batch")
router.register("tasks", work.TaskViewSet, basename="task")
router.register("assignments", work.AssignmentViewSet, basename="assignment")
router.register("rankings", work.RankingViewSet, basename="ranking")
router.register("datasets", datasets.DatasetViewSet, basename="dataset")
router.register("jobs", jobs.JobViewSet, basename="job")
router.register("model-versions", training.ModelVersionViewSet, basename="model-version")
router.register("training-runs", training.TrainingRunViewSet, basename="training-run")
router.register("rounds", training.RoundViewSet, basename="round")

urlpatterns = [
    path("auth/token/", TokenObtainApi.as_view(), name="token"),  # throttled: see labeling/api/auth.py
    path("auth/tokens/", TokenListApi.as_view(), name="token-list"),
    path("auth/tokens/<str:prefix>/", TokenRevokeApi.as_view(), name="token-revoke"),
    path("auth/team-tokens/", TeamTokenListApi.as_view(), name="team-token-list"),
    path("auth/logout-everywhere/", LogOutEverywhereApi.as_view(), name="logout-everywhere"),
    path("imports/prompts/", imports.PromptImportApi.as_view(), name="import-prompts"),
    path("imports/completions/", imports.CompletionImportApi.as_view(), name="import-completions"),
    path("quality/agreement/", quality.AgreementApi.as_view(), name="quality-agreement"),
    path("quality/labelers/", quality.LabelerListApi.as_view(), name="quality-labelers"),
    path("quality/labelers/<int:user_id>/", quality.LabelerDetailApi.as_view(), name="quality-labeler"),
    path("evaluations/", training.EvaluationListApi.as_view(), name="evaluations"),
    path("evaluations/<int:batch_id>/", training.EvaluationResultsApi.as_view(), name="evaluation"),
    path("schema/", SchemaApi.as_view(), name="schema"),
    path("docs/", DocsApi.as_view(), name="docs"),
    path("", include(router.urls)),
]
