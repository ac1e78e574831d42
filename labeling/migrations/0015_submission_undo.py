"""The undo window (labeling/services/undo.py): a submission stays pending on its assignment (status
'pending', the validated submission, the window's end) until the window closes, and a periodic sweep
writes the labels of those whose window has closed. Two indexes: a labeler's history, newest first, and
the sweep's due pending submissions."""

from django.db import migrations, models

SWEEP = "Write the labels of submissions whose undo window has closed"


def create(apps, schema_editor):
    Interval = apps.get_model("django_celery_beat", "IntervalSchedule")
    Periodic = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = Interval.objects.get_or_create(every=15, period="seconds")
    Periodic.objects.get_or_create(
        name=SWEEP, defaults={"task": "labeling.tasks.finalise_submissions", "interval": every}
    )


def remove(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=SWEEP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0014_snapshot_contents_ratings"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="assignment",
            name="assignment_status_valid",
        ),
        migrations.AddField(
            model_name="assignment",
            name="submission",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddField(
            model_name="assignment",
            name="undo_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AlterField(
            model_name="assignment",
            name="status",
            field=models.CharField(
                choices=[
                    ("active", "Active"),
                    ("submitted", "Submitted"),
                    ("pending", "Submitted (undo window open)"),
                    ("skipped", "Skipped"),
                    ("expired", "Expired"),
                ],
                default="active",
                max_length=10,
            ),
        ),
        migrations.AddIndex(
            model_name="assignment",
            index=models.Index(fields=["labeler", "-finished_at"], name="assignment_labeler_history"),
        ),
        migrations.AddIndex(
            model_name="assignment",
            index=models.Index(
                condition=models.Q(("status", "pending")),
                fields=["undo_until"],
                name="assignment_pending_until",
            ),
        ),
        migrations.AddConstraint(
            model_name="assignment",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["active", "submitted", "pending", "skipped", "expired"])),
                name="assignment_status_valid",
            ),
        ),
        migrations.RunPython(create, remove),
    ]
