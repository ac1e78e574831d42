from django.urls import path

from . import views
from .evaluation import views as evaluation_views

app_name = "training"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("runs/new/", views.run_new, name="run_new"),
    path("runs/<int:pk>/", views.run_detail, name="run"),
    path("runs/<int:pk>/status.json", views.run_status, name="run_status"),
    path("runs/<int:pk>/cancel/", views.run_cancel_view, name="run_cancel"),
    path("runs/<int:pk>/retry/", views.run_retry_view, name="run_retry"),
    path("models/<int:pk>/", views.model_detail, name="model"),
    path("rounds/start/", views.round_start_view, name="round_start"),
    path("rounds/<int:pk>/", views.round_detail, name="round"),
    path("rounds/<int:pk>/status.json", views.round_status, name="round_status"),
    path("rounds/<int:pk>/retry/", views.round_retry_view, name="round_retry"),
    path("evaluations/", evaluation_views.evaluations, name="evaluations"),
    path("evaluations/<int:batch_id>/", evaluation_views.evaluation, name="evaluation"),
]
