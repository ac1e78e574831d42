from django.apps import AppConfig


class CoreConfig(AppConfig):
    """What every app shares: errors, roles and permissions, row reading, dispatch and the API kit.
    It has no models and knows neither labeling nor training (they import it)."""

    name = "core"
    verbose_name = "Core"
