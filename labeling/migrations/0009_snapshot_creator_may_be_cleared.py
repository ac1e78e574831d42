"""Dataset snapshots stay immutable, with one exception: deleting the user who made one clears its
created_by (on_delete=SET_NULL). Before this, the trigger refused that update, so such a user could not be
deleted at all."""

from django.db import migrations

POSTGRES_FORWARD = """CREATE OR REPLACE FUNCTION labeling_snapshot_immutable() RETURNS trigger AS $$
   BEGIN
     IF NEW.created_by_id IS NULL AND (to_jsonb(NEW) - 'created_by_id') = (to_jsonb(OLD) - 'created_by_id') THEN
       RETURN NEW;  -- the creator's account was deleted; nothing else changes
     END IF;
     RAISE EXCEPTION 'dataset snapshot % is immutable; create a new one', OLD.id
       USING ERRCODE = 'integrity_constraint_violation';
   END $$ LANGUAGE plpgsql"""
POSTGRES_BACKWARD = """CREATE OR REPLACE FUNCTION labeling_snapshot_immutable() RETURNS trigger AS $$
   BEGIN
     RAISE EXCEPTION 'dataset snapshot % is immutable; create a new one', OLD.id
       USING ERRCODE = 'integrity_constraint_violation';
   END $$ LANGUAGE plpgsql"""
SQLITE_OLD_TRIGGER = """CREATE TRIGGER labeling_snapshot_no_update BEFORE UPDATE ON labeling_datasetsnapshot
   BEGIN SELECT RAISE(ABORT, 'dataset snapshots are immutable'); END"""


def forward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_FORWARD, None)
    elif vendor == "sqlite":
        snapshot = apps.get_model("labeling", "DatasetSnapshot")
        others = [f.column for f in snapshot._meta.concrete_fields if f.column != "created_by_id"]
        changed = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in others)
        schema_editor.execute("DROP TRIGGER labeling_snapshot_no_update")
        schema_editor.execute(
            "CREATE TRIGGER labeling_snapshot_no_update BEFORE UPDATE ON labeling_datasetsnapshot "
            f"WHEN NEW.created_by_id IS NOT NULL OR {changed} "
            "BEGIN SELECT RAISE(ABORT, 'dataset snapshots are immutable'); END"
        )


def backward(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(POSTGRES_BACKWARD, None)
    elif vendor == "sqlite":
        schema_editor.execute("DROP TRIGGER labeling_snapshot_no_update")
        schema_editor.execute(SQLITE_OLD_TRIGGER)


class Migration(migrations.Migration):
    dependencies = [("labeling", "0008_task_labels_submitted")]

    operations = [migrations.RunPython(forward, backward)]
