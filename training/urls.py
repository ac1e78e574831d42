from django.urls import path

from . import api, views

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
    path("rounds/<int:pk>/retry/", views.round_retry_view, name="round_retry"),
    path("api/runs/", api.RunStartApi.as_view(), name="api_run_start"),
    path("api/runs/<int:pk>/", api.RunDetailApi.as_view(), name="api_run"),
    path("api/runs/<int:pk>/cancel/", api.RunCancelApi.as_view(), name="api_run_cancel"),
    path("api/rounds/", api.RoundStartApi.as_view(), name="api_round_start"),
    path("api/rounds/<int:pk>/", api.RoundDetailApi.as_view(), name="api_round"),
]
