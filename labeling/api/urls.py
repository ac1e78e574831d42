"""The REST API under /api/: resources, API tokens for scripts (auth.py), the OpenAPI schema and Swagger UI."""

from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.authentication import SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.routers import DefaultRouter

from . import batches, catalog, datasets, imports, jobs, training, work
from .auth import LogOutEverywhereApi, TeamTokenListApi, TokenListApi, TokenObtainApi, TokenRevokeApi
from .authentication import TokenAuthentication
from .schema import ApiSchemaGenerator

app_name = "api"


# The schema and its viewers are for signed-in users (anonymous visitors see the login page only).
signed_in = {
    "permission_classes": [IsAuthenticated],
    "authentication_classes": [TokenAuthentication, SessionAuthentication],
}


class ApiRoot(DefaultRouter.APIRootView):
    authentication_classes = signed_in["authentication_classes"]
    permission_classes = signed_in["permission_classes"]


router = DefaultRouter()
router.APIRootView = ApiRoot
# No '/api/prompts.json' style routes: several actions do not take their `format` kwarg (a 500), and
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

urlpatterns = [
    path("auth/token/", TokenObtainApi.as_view(), name="token"),  # throttled: see auth.py
    path("auth/tokens/", TokenListApi.as_view(), name="token-list"),
    path("auth/tokens/<str:prefix>/", TokenRevokeApi.as_view(), name="token-revoke"),
    path("auth/team-tokens/", TeamTokenListApi.as_view(), name="team-token-list"),
    path("auth/logout-everywhere/", LogOutEverywhereApi.as_view(), name="logout-everywhere"),
    path("imports/prompts/", imports.PromptImportApi.as_view(), name="import-prompts"),
    path("imports/completions/", imports.CompletionImportApi.as_view(), name="import-completions"),
    path(
        "schema/", SpectacularAPIView.as_view(generator_class=ApiSchemaGenerator, **signed_in), name="schema"
    ),
    path("docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema", **signed_in), name="docs"),
    path("", include(router.urls)),
]
