"""The hourly sweep of expired API tokens (labeling.tasks.delete_expired_tokens)."""

from django.db import migrations

SWEEP = "Delete expired API tokens"


def create(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    Periodic = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = Interval.objects.get_or_create(every=1, period="hours")
    Periodic.objects.get_or_create(
        name=SWEEP, defaults={"task": "labeling.tasks.delete_expired_tokens", "interval": every}
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SWEEP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0016_explorer"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create, remove)]
