"""Audit events are only ever added: the database refuses changing or deleting one. The one change let
through is Django setting `actor` to NULL when the user is deleted (actor_name keeps the name).

SQLite (the local demo) refuses changes only: its flush empties tables with DELETE."""

from django.db import migrations

POSTGRES_FORWARD = [
    """CREATE FUNCTION audit_event_append_only() RETURNS trigger AS $$
       BEGIN
         IF TG_OP = 'UPDATE' AND NEW.actor_id IS NULL
            AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
           RETURN NEW;
         END IF;
         RAISE EXCEPTION 'audit event % is never changed or deleted', OLD.id
           USING ERRCODE = 'integrity_constraint_violation';
       END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER audit_event_append_only BEFORE UPDATE OR DELETE ON audit_auditevent
       FOR EACH ROW EXECUTE FUNCTION audit_event_append_only()""",
]
POSTGRES_BACKWARD = [
    "DROP TRIGGER audit_event_append_only ON audit_auditevent",
    "DROP FUNCTION audit_event_append_only()",
]
COLUMNS = ("id", "actor_name", "action", "object_type", "object_id", "object_repr", "details", "created_at")
SQLITE_FORWARD = [
    f"""CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_auditevent
        WHEN NEW.actor_id IS NOT NULL OR {" OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in COLUMNS)}
        BEGIN SELECT RAISE(ABORT, 'audit events are never changed'); END""",
]
SQLITE_BACKWARD = ["DROP TRIGGER audit_event_no_update"]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, None)

    return run


class Migration(migrations.Migration):
    dependencies = [("audit", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        )
    ]
