"""Recovery of lost messages: a run remembers when its task was last sent, a round (without a broker) the
process that runs it, and a periodic task goes on from what a lost message left waiting."""

from django.db import migrations, models

SWEEP = "Recover rounds and runs whose message was lost"


def create(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    Periodic = apps.get_model("django_celery_beat", "PeriodicTask")
    minute, _ = Interval.objects.get_or_create(every=60, period="seconds")
    Periodic.objects.get_or_create(
        name=SWEEP, defaults={"task": "training.tasks.recover_lost_messages", "interval": minute}
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SWEEP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("training", "0004_run_worker"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.AddField(
            model_name="trainingrun",
            name="sent_at",
            field=models.DateTimeField(
                blank=True,
                null=True,
                help_text="When its task was last sent; a run queued too long is sent again.",
            ),
        ),
        migrations.AddField(
            model_name="round",
            name="worker",
            field=models.CharField(
                blank=True,
                max_length=300,
                help_text="host:pid of the process that runs it when there is no broker, so a "
                "next start can tell it is gone.",
            ),
        ),
        migrations.RunPython(create, remove),
    ]
