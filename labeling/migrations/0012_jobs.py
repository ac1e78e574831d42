"""Job: an import or an export run on a worker of the default queue, with its progress and outcome."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0011_snapshot_format"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Job",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("prompt_import", "Prompt import"),
                            ("completion_import", "Completion import"),
                            ("export", "Dataset export"),
                        ],
                        max_length=20,
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("running", "Running"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed"),
                        ],
                        db_index=True,
                        default="queued",
                        max_length=10,
                    ),
                ),
                (
                    "params",
                    models.JSONField(
                        blank=True, default=dict, help_text="What was asked: format, PII, batch, filters."
                    ),
                ),
                (
                    "upload",
                    models.CharField(
                        blank=True,
                        help_text="The uploaded file, relative to MEDIA_ROOT (a name the server chose).",
                        max_length=500,
                    ),
                ),
                (
                    "upload_name",
                    models.CharField(blank=True, help_text="The name it was uploaded under.", max_length=255),
                ),
                ("progress_done", models.PositiveBigIntegerField(default=0)),
                ("progress_total", models.PositiveBigIntegerField(default=0)),
                (
                    "message",
                    models.TextField(blank=True, help_text="What the job is doing, or why it failed."),
                ),
                ("error_code", models.CharField(blank=True, max_length=40)),
                (
                    "errors",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text="A rejected file's first errors: line, field, message.",
                    ),
                ),
                ("error_count", models.PositiveIntegerField(default=0)),
                ("result", models.JSONField(blank=True, default=dict, help_text="An import's counts.")),
                ("worker_task_id", models.CharField(blank=True, max_length=200)),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "batch",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="labeling.batch",
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "snapshot",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="labeling.datasetsnapshot",
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("kind__in", ["prompt_import", "completion_import", "export"])),
                        name="job_kind_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("status__in", ["queued", "running", "succeeded", "failed"])),
                        name="job_status_valid",
                    ),
                ],
            },
        ),
    ]
