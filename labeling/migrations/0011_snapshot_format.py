"""DatasetSnapshot.format: "standard" (texts as strings, every snapshot so far) or "conversational" (TRL's
conversational format: texts as lists of chat messages), checked by the database.

Snapshots stay immutable. On Postgres the trigger of migration 0009 compares whole rows (to_jsonb), so it
covers the new column as it is. On SQLite, adding a column rebuilds labeling_datasetsnapshot, which would
drop its trigger with the old table, and that trigger names every column but created_by_id: it is dropped
around the change and recreated over the columns of the day (as 0009 built it)."""

from django.db import migrations, models

TRIGGER = "labeling_snapshot_no_update"


def _drop_sqlite_trigger(apps, schema_editor):
    if schema_editor.connection.vendor == "sqlite":
        schema_editor.execute(f"DROP TRIGGER IF EXISTS {TRIGGER}")


def _create_sqlite_trigger(apps, schema_editor):
    if schema_editor.connection.vendor != "sqlite":
        return
    snapshot = apps.get_model("labeling", "DatasetSnapshot")
    others = [f.column for f in snapshot._meta.concrete_fields if f.column != "created_by_id"]
    changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in others)
    schema_editor.execute(
        f"CREATE TRIGGER {TRIGGER} BEFORE UPDATE ON labeling_datasetsnapshot "
        f"WHEN NEW.created_by_id IS NOT NULL OR {changed} "
        "BEGIN SELECT RAISE(ABORT, 'dataset snapshots are immutable'); END"
    )


class Migration(migrations.Migration):
    dependencies = [("labeling", "0010_task_live_leases")]

    operations = [
        migrations.RunPython(_drop_sqlite_trigger, _create_sqlite_trigger),
        migrations.AddField(
            model_name="datasetsnapshot",
            name="format",
            field=models.CharField(
                choices=[
                    ("standard", "Standard (texts as strings)"),
                    ("conversational", "Conversational (texts as chat messages)"),
                ],
                default="standard",
                max_length=20,
            ),
        ),
        migrations.AddConstraint(
            model_name="datasetsnapshot",
            constraint=models.CheckConstraint(
                condition=models.Q(format__in=["standard", "conversational"]), name="snapshot_format_valid"
            ),
        ),
        migrations.RunPython(_create_sqlite_trigger, _drop_sqlite_trigger),
    ]
