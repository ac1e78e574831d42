"""Rules a CHECK constraint cannot express, enforced by the database itself:
- a ranking task's completions belong to the task's prompt (composite foreign keys on Postgres,
  triggers on SQLite);
- dataset snapshots are never updated (a trigger on both)."""

from django.db import migrations

POSTGRES_FORWARD = [
    """ALTER TABLE labeling_taskcompletion ADD CONSTRAINT taskcompletion_completion_of_prompt
       FOREIGN KEY (completion_id, prompt_id) REFERENCES labeling_completion (id, prompt_id)""",
    """ALTER TABLE labeling_taskcompletion ADD CONSTRAINT taskcompletion_task_of_prompt
       FOREIGN KEY (task_id, prompt_id) REFERENCES labeling_task (id, prompt_id)""",
    """CREATE FUNCTION labeling_snapshot_immutable() RETURNS trigger AS $$
       BEGIN
         RAISE EXCEPTION 'dataset snapshot % is immutable; create a new one', OLD.id
           USING ERRCODE = 'integrity_constraint_violation';
       END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER labeling_snapshot_no_update BEFORE UPDATE ON labeling_datasetsnapshot
       FOR EACH ROW EXECUTE FUNCTION labeling_snapshot_immutable()""",
]
POSTGRES_BACKWARD = [
    "DROP TRIGGER labeling_snapshot_no_update ON labeling_datasetsnapshot",
    "DROP FUNCTION labeling_snapshot_immutable()",
    "ALTER TABLE labeling_taskcompletion DROP CONSTRAINT taskcompletion_task_of_prompt",
    "ALTER TABLE labeling_taskcompletion DROP CONSTRAINT taskcompletion_completion_of_prompt",
]
SQLITE_FORWARD = [
    """CREATE TRIGGER taskcompletion_of_prompt BEFORE INSERT ON labeling_taskcompletion
       WHEN (SELECT prompt_id FROM labeling_completion WHERE id = NEW.completion_id) IS NOT NEW.prompt_id
         OR (SELECT prompt_id FROM labeling_task WHERE id = NEW.task_id) IS NOT NEW.prompt_id
       BEGIN SELECT RAISE(ABORT, 'completion and task must belong to the same prompt'); END""",
    """CREATE TRIGGER labeling_snapshot_no_update BEFORE UPDATE ON labeling_datasetsnapshot
       BEGIN SELECT RAISE(ABORT, 'dataset snapshots are immutable'); END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER taskcompletion_of_prompt",
    "DROP TRIGGER labeling_snapshot_no_update",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for sql in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(sql, None)

    return run


class Migration(migrations.Migration):
    dependencies = [("labeling", "0002_initial")]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRES_BACKWARD, "sqlite": SQLITE_BACKWARD}),
        )
    ]
