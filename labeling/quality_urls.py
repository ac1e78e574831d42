"""Label quality pages, mounted at /quality/; their read-only API is under /api/v1/quality/
(config/api_urls.py). Model evaluation is the training side's: /training/evaluations/."""

from django.urls import path

from .views import quality_dashboard, quality_gold

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
]
