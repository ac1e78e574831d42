"""Label quality and model evaluation pages and their read-only API; mounted at /quality/."""

from django.urls import path

from .quality import api
from .views import quality_dashboard, quality_evaluation, quality_gold

app_name = "quality"

urlpatterns = [
    path("", quality_dashboard.dashboard, name="dashboard"),
    path("labelers/<int:user_id>/", quality_dashboard.labeler_detail, name="labeler"),
    path("gold/", quality_gold.gold_index, name="gold"),
    path("gold/<int:batch_id>/", quality_gold.gold_batch, name="gold_batch"),
    path("gold/<int:batch_id>/settings/", quality_gold.gold_settings, name="gold_settings"),
    path("gold/tasks/<int:task_id>/", quality_gold.gold_task, name="gold_task"),
    path(
        "gold/<int:batch_id>/labelers/<int:user_id>/",
        quality_gold.qualification_decision,
        name="qualification_decision",
    ),
    path("evaluations/", quality_evaluation.evaluations, name="evaluations"),
    path("evaluations/<int:batch_id>/", quality_evaluation.evaluation, name="evaluation"),
    path("api/agreement/", api.AgreementApi.as_view(), name="api_agreement"),
    path("api/labelers/", api.LabelerListApi.as_view(), name="api_labelers"),
    path("api/labelers/<int:user_id>/", api.LabelerDetailApi.as_view(), name="api_labeler"),
    path("api/evaluations/", api.EvaluationListApi.as_view(), name="api_evaluations"),
    path("api/evaluations/<int:batch_id>/", api.EvaluationResultsApi.as_view(), name="api_evaluation"),
]
