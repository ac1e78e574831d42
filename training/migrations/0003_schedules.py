"""The periodic schedules, editable in the admin (django-celery-beat). The reaper is on; the nightly
round and the RM retrain check are created disabled, for an admin to switch on."""

import json

from django.db import migrations


def create(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    Crontab = apps.get_model("django_celery_beat", "CrontabSchedule")
    Periodic = apps.get_model("django_celery_beat", "PeriodicTask")
    minute, _ = Interval.objects.get_or_create(every=60, period="seconds")
    quarter, _ = Interval.objects.get_or_create(every=15, period="minutes")
    nightly, _ = Crontab.objects.get_or_create(minute="0", hour="2", day_of_week="*", day_of_month="*",
                                               month_of_year="*", timezone="UTC")
    Periodic.objects.get_or_create(name="Reap training runs whose worker died",
                                   defaults={"task": "training.tasks.reap_stale_runs", "interval": minute})
    Periodic.objects.get_or_create(name="Run a round every night at 02:00",
                                   defaults={"task": "training.tasks.scheduled_round", "crontab": nightly,
                                             "kwargs": json.dumps({"method": "ppo"}), "enabled": False})
    Periodic.objects.get_or_create(name="Retrain the RM after 1000 new comparisons",
                                   defaults={"task": "training.tasks.retrain_rm_if_due", "interval": quarter,
                                             "kwargs": json.dumps({"threshold": 1000}), "enabled": False})


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(task__startswith="training.tasks.").delete()


class Migration(migrations.Migration):
    dependencies = [("training", "0002_rounds"), ("django_celery_beat", "0019_alter_periodictasks_options")]

    operations = [migrations.RunPython(create, remove)]
