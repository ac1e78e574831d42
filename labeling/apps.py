from django.apps import AppConfig
from django.contrib.auth import get_user_model
from django.db.models.signals import post_migrate, post_save, pre_save


class LabelingConfig(AppConfig):
    name = "labeling"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from . import tasks  # noqa: F401  (registers the Celery tasks that services send by name)
        from .password_changes import remember_stored_password, revoke_tokens_on_password_change
        from .roles import sync_role_permissions

        post_migrate.connect(sync_role_permissions, sender=self)
        pre_save.connect(remember_stored_password, sender=get_user_model())
        post_save.connect(revoke_tokens_on_password_change, sender=get_user_model())
