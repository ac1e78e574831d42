"""Label quality: gold tasks (a reference ranking), a batch's gold rate, qualification batches (screening)
with their pass mark, batches gated by one, and admins' decisions on labelers who were screened.
Hand-written; additive only (new columns have defaults, so existing rows need no data migration).

On SQLite, adding a column to labeling_task rebuilds the table, and renaming the rebuilt table fails
while the trigger of migration 0003 names it: the trigger is dropped around the change and recreated."""

from collections.abc import Callable

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

RunCode = Callable[[StateApps, BaseDatabaseSchemaEditor], None]  # what RunPython runs

SQLITE_TRIGGER = """CREATE TRIGGER taskcompletion_of_prompt BEFORE INSERT ON labeling_taskcompletion
       WHEN (SELECT prompt_id FROM labeling_completion WHERE id = NEW.completion_id) IS NOT NEW.prompt_id
         OR (SELECT prompt_id FROM labeling_task WHERE id = NEW.task_id) IS NOT NEW.prompt_id
       BEGIN SELECT RAISE(ABORT, 'completion and task must belong to the same prompt'); END"""


def _on_sqlite(sql: str) -> RunCode:
    def run(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "sqlite":
            schema_editor.execute(sql, None)

    return run


DROP_TRIGGER = _on_sqlite("DROP TRIGGER IF EXISTS taskcompletion_of_prompt")
CREATE_TRIGGER = _on_sqlite(SQLITE_TRIGGER)


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0004_roles"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="batch",
            name="gold_rate",
            field=models.FloatField(default=0.0, help_text="Share of each labeler's tasks that are gold tasks, 0 to 1."),
        ),
        migrations.AddField(
            model_name="batch",
            name="is_qualification",
            field=models.BooleanField(default=False, help_text="A screening batch: gold tasks only."),
        ),
        migrations.AddField(
            model_name="batch",
            name="qualification_threshold",
            field=models.FloatField(
                default=0.7, help_text="Pass mark of a qualification batch: the gold accuracy (0 to 1) a labeler needs."
            ),
        ),
        migrations.AddField(
            model_name="batch",
            name="requires_qualification",
            field=models.ForeignKey(
                blank=True,
                help_text="Labelers get tasks here only after passing this qualification batch (or an admin's approval).",
                limit_choices_to={"is_qualification": True},
                null=True,
                on_delete=django.db.models.deletion.PROTECT,
                related_name="gated_batches",
                to="labeling.batch",
            ),
        ),
        migrations.RunPython(DROP_TRIGGER, CREATE_TRIGGER),
        migrations.AddField(model_name="task", name="is_gold", field=models.BooleanField(default=False)),
        migrations.AddField(model_name="task", name="gold_tiers", field=models.JSONField(blank=True, null=True)),
        migrations.AddConstraint(
            model_name="batch",
            constraint=models.CheckConstraint(
                condition=models.Q(("gold_rate__gte", 0), ("gold_rate__lte", 1)), name="batch_gold_rate_0_to_1"
            ),
        ),
        migrations.AddConstraint(
            model_name="batch",
            constraint=models.CheckConstraint(
                condition=models.Q(("qualification_threshold__gte", 0), ("qualification_threshold__lte", 1)),
                name="batch_qualification_threshold_0_to_1",
            ),
        ),
        migrations.AddConstraint(
            model_name="batch",
            constraint=models.CheckConstraint(
                condition=models.Q(("is_qualification", False), ("requires_qualification__isnull", True), _connector="OR"),
                name="batch_qualification_not_gated",
            ),
        ),
        migrations.AddConstraint(
            model_name="task",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("gold_tiers__isnull", True), ("is_gold", False)),
                    models.Q(("gold_tiers__isnull", False), ("is_gold", True)),
                    _connector="OR",
                ),
                name="task_gold_has_reference",
            ),
        ),
        migrations.RunPython(CREATE_TRIGGER, DROP_TRIGGER),
        migrations.CreateModel(
            name="LabelerQualification",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "status",
                    models.CharField(
                        choices=[("approved", "Approved by an admin"), ("blocked", "Blocked by an admin")], max_length=10
                    ),
                ),
                (
                    "gold_accuracy",
                    models.FloatField(blank=True, help_text="The labeler's gold accuracy when decided.", null=True),
                ),
                ("decided_at", models.DateTimeField(auto_now=True)),
                (
                    "batch",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE, related_name="qualifications", to="labeling.batch"
                    ),
                ),
                (
                    "decided_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "labeler",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="qualifications",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(fields=("labeler", "batch"), name="qualification_once_per_labeler"),
                    models.CheckConstraint(
                        condition=models.Q(("status__in", ["approved", "blocked"])), name="qualification_status_valid"
                    ),
                ],
            },
        ),
    ]
