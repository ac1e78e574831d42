"""Management pages under /manage/: batches (batch admins run them), imports, datasets (researchers), and
the page of each import or export job, and the People page (batch admins onboard their team's labelers)."""

from django.urls import path

from .views import manage_batches, manage_datasets, manage_imports, manage_jobs, people

app_name = "manage"

urlpatterns = [
    path("", manage_batches.home, name="home"),
    path("batches/", manage_batches.batch_list, name="batches"),
    path("batches/new/", manage_batches.batch_new, name="batch_new"),
    path("batches/<int:pk>/", manage_batches.batch_detail, name="batch"),
    path("batches/<int:pk>/action/", manage_batches.batch_action, name="batch_action"),
    path("batches/<int:pk>/labelers/", manage_batches.batch_labelers, name="batch_labelers"),
    path("batches/<int:pk>/settings/", manage_batches.batch_settings, name="batch_settings"),
    path("imports/", manage_imports.imports, name="imports"),
    path("datasets/", manage_datasets.datasets, name="datasets"),
    path("datasets/<int:pk>/download/", manage_datasets.download, name="dataset_download"),
    path("datasets/<int:pk>/delete/", manage_datasets.delete, name="dataset_delete"),
    path("jobs/<int:pk>/", manage_jobs.job_detail, name="job"),
    path("people/", people.people, name="people"),
    path("people/<int:user_id>/password/", people.password_reset, name="people_password"),
    path("people/<int:user_id>/role/", people.labeler_role, name="people_role"),
]
