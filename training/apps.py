from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        """Register the Celery tasks in every process, so services can send them by name
        (training.dispatch) without importing the task module that calls them."""
        from . import tasks  # noqa: F401
