"""Task.labels_submitted: how many of a task's assignments are submitted, kept by triggers on Postgres so
the hand-out passes over finished tasks without counting their assignments (it walked every finished
task of the batch before: 11 ms per hand-out with 3,200 finished tasks, 0.5 ms with this filter).

The count is filled in for existing tasks. Triggers fire only when an assignment becomes or stops being
submitted (or moves to another task), so hand-outs, lease renewals and drafts do not touch the task row.
Nothing keeps the count on SQLite, where it stays 0 and filters nothing out (see Task.labels_submitted).

On SQLite, adding a column to labeling_task rebuilds the table, and renaming the rebuilt table fails while
the trigger of migration 0003 names it: the trigger is dropped around the change and recreated (as 0007)."""

from collections.abc import Callable

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

RunCode = Callable[[StateApps, BaseDatabaseSchemaEditor], None]  # what RunPython runs

SQLITE_TRIGGER = """CREATE TRIGGER taskcompletion_of_prompt BEFORE INSERT ON labeling_taskcompletion
       WHEN (SELECT prompt_id FROM labeling_completion WHERE id = NEW.completion_id) IS NOT NEW.prompt_id
         OR (SELECT prompt_id FROM labeling_task WHERE id = NEW.task_id) IS NOT NEW.prompt_id
       BEGIN SELECT RAISE(ABORT, 'completion and task must belong to the same prompt'); END"""

POSTGRES_FORWARD = [
    """UPDATE labeling_task t SET labels_submitted = (
         SELECT count(*) FROM labeling_assignment a WHERE a.task_id = t.id AND a.status = 'submitted')""",
    """CREATE FUNCTION labeling_task_count_submitted() RETURNS trigger AS $$
       BEGIN
         IF TG_OP IN ('UPDATE', 'DELETE') THEN
           IF OLD.status = 'submitted' THEN
             UPDATE labeling_task SET labels_submitted = greatest(labels_submitted - 1, 0) WHERE id = OLD.task_id;
           END IF;
         END IF;
         IF TG_OP IN ('UPDATE', 'INSERT') THEN
           IF NEW.status = 'submitted' THEN
             UPDATE labeling_task SET labels_submitted = labels_submitted + 1 WHERE id = NEW.task_id;
           END IF;
         END IF;
         RETURN NULL;
       END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER labeling_assignment_submitted_insert AFTER INSERT ON labeling_assignment
       FOR EACH ROW WHEN (NEW.status = 'submitted') EXECUTE FUNCTION labeling_task_count_submitted()""",
    """CREATE TRIGGER labeling_assignment_submitted_update AFTER UPDATE OF status, task_id ON labeling_assignment
       FOR EACH ROW WHEN ((OLD.status = 'submitted' OR NEW.status = 'submitted')
                          AND (OLD.status IS DISTINCT FROM NEW.status OR OLD.task_id IS DISTINCT FROM NEW.task_id))
       EXECUTE FUNCTION labeling_task_count_submitted()""",
    """CREATE TRIGGER labeling_assignment_submitted_delete AFTER DELETE ON labeling_assignment
       FOR EACH ROW WHEN (OLD.status = 'submitted') EXECUTE FUNCTION labeling_task_count_submitted()""",
]
POSTGRES_BACKWARD = [
    "DROP TRIGGER labeling_assignment_submitted_delete ON labeling_assignment",
    "DROP TRIGGER labeling_assignment_submitted_update ON labeling_assignment",
    "DROP TRIGGER labeling_assignment_submitted_insert ON labeling_assignment",
    "DROP FUNCTION labeling_task_count_submitted()",
]


def _on(vendor: str, *statements: str) -> RunCode:
    def run(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == vendor:
            for sql in statements:
                schema_editor.execute(sql, None)

    return run


class Migration(migrations.Migration):
    dependencies = [("labeling", "0007_quality")]

    operations = [
        migrations.RunPython(
            _on("sqlite", "DROP TRIGGER IF EXISTS taskcompletion_of_prompt"), _on("sqlite", SQLITE_TRIGGER)
        ),
        migrations.AddField(
            model_name="task",
            name="labels_submitted",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.RunPython(
            _on("sqlite", SQLITE_TRIGGER), _on("sqlite", "DROP TRIGGER IF EXISTS taskcompletion_of_prompt")
        ),
        migrations.RunPython(_on("postgresql", *POSTGRES_FORWARD), _on("postgresql", *POSTGRES_BACKWARD)),
    ]
