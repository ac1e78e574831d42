"""DatasetSnapshot.contents: what the file holds, counted as it is written (lines per batch, and lines from no
batch), so a model's lineage names exactly the batches behind it; and the "ratings" kind (one line per rated
output), checked by the database. Snapshots exported before this record {} (not counted).

Snapshots stay immutable: on Postgres the trigger of migration 0009 compares whole rows, so it covers the new
column; on SQLite adding a column rebuilds the table, so its trigger is dropped and recreated around the change
over the columns of the day, as in migration 0011."""

from django.db import migrations, models

TRIGGER = "labeling_snapshot_no_update"
KINDS = [
    ("sft", "SFT (prompt, completion)"),
    ("rm_pairs", "RM pairs (prompt, chosen, rejected)"),
    ("rm_rankings", "RM rankings (prompt, completions, ranks)"),
    ("prompts", "Prompts"),
    ("ratings", "Ratings (prompt, completion, likert, flags)"),
]


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
    dependencies = [("labeling", "0013_job_recovery")]

    operations = [
        migrations.RunPython(_drop_sqlite_trigger, _create_sqlite_trigger),
        migrations.AddField(
            model_name="datasetsnapshot",
            name="contents",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AlterField(
            model_name="datasetsnapshot",
            name="kind",
            field=models.CharField(choices=KINDS, max_length=20),
        ),
        migrations.RemoveConstraint(model_name="datasetsnapshot", name="snapshot_kind_valid"),
        migrations.AddConstraint(
            model_name="datasetsnapshot",
            constraint=models.CheckConstraint(
                condition=models.Q(kind__in=[kind for kind, _ in KINDS]), name="snapshot_kind_valid"
            ),
        ),
        migrations.RunPython(_create_sqlite_trigger, _drop_sqlite_trigger),
    ]
