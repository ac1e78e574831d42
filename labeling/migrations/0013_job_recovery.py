"""Recovery of jobs: a job remembers when its task was last sent and when it last showed progress, and a
periodic task goes on from what a lost message or a dead worker left waiting (services/jobs.py)."""

from django.db import migrations, models

SWEEP = "Recover import and export jobs whose message or worker was lost"


def create(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    Periodic = apps.get_model("django_celery_beat", "PeriodicTask")
    minute, _ = Interval.objects.get_or_create(every=60, period="seconds")
    Periodic.objects.get_or_create(
        name=SWEEP, defaults={"task": "labeling.tasks.recover_jobs", "interval": minute}
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SWEEP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0012_jobs"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="job",
            name="sent_at",
            field=models.DateTimeField(
                blank=True,
                null=True,
                help_text="When its task was last sent; a job queued too long is sent again.",
            ),
        ),
        migrations.AddField(
            model_name="job",
            name="progress_at",
            field=models.DateTimeField(
                blank=True,
                null=True,
                help_text="When it last showed progress (or started); a job running without any for too long "
                "is failed.",
            ),
        ),
        migrations.RunPython(create, remove),
    ]
