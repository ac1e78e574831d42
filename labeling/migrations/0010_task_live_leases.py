"""Task.labels_active and Task.earliest_lease_end beside labels_submitted, all three kept by one Postgres
trigger, so the hand-out also passes over tasks whose labels are all submitted or under live leases
without counting their assignments.

With 200 labelers at work, the hand-out walked the 70 to 200 tasks of the batch's frontier that had
fewer than `overlap` submitted labels but were full of live leases, counting each one's assignments:
0.5 ms per hand-out in the best case, 5.6 ms on a batch whose assignment table had grown since the
planner last looked (bench/labeling_load.py). A task can have room for another labeler only if
labels_submitted + labels_active < overlap, or one of its active leases has lapsed (earliest_lease_end
< now): a test on the task's own row.

The trigger locks the task's row, then counts in a new statement (a new snapshot): whoever changed the
task's assignments before holds that lock until they commit, so the last count sees every committed
change (counting in the same statement as the lock wait would miss a concurrent one). Changes that move
no count (drafts, skip reasons) do not fire it. Replaces migration 0008's trigger, which kept
labels_submitted by increments.

On SQLite, adding columns to labeling_task rebuilds the table: migration 0003's trigger is dropped around
the change and recreated (as 0008)."""

from collections.abc import Callable

from django.db import migrations, models
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

RunCode = Callable[[StateApps, BaseDatabaseSchemaEditor], None]  # what RunPython runs

SQLITE_TRIGGER = """CREATE TRIGGER taskcompletion_of_prompt BEFORE INSERT ON labeling_taskcompletion
       WHEN (SELECT prompt_id FROM labeling_completion WHERE id = NEW.completion_id) IS NOT NEW.prompt_id
         OR (SELECT prompt_id FROM labeling_task WHERE id = NEW.task_id) IS NOT NEW.prompt_id
       BEGIN SELECT RAISE(ABORT, 'completion and task must belong to the same prompt'); END"""

RECOUNT = """UPDATE labeling_task t SET labels_submitted = c.submitted, labels_active = c.active,
                    earliest_lease_end = c.lease_end
             FROM (SELECT count(*) FILTER (WHERE a.status = 'submitted') AS submitted,
                          count(*) FILTER (WHERE a.status = 'active') AS active,
                          min(a.lease_expires_at) FILTER (WHERE a.status = 'active') AS lease_end
                   FROM labeling_assignment a WHERE a.task_id = {task}) c
             WHERE t.id = {task}"""

OLD_TRIGGERS = [
    "DROP TRIGGER labeling_assignment_submitted_delete ON labeling_assignment",
    "DROP TRIGGER labeling_assignment_submitted_update ON labeling_assignment",
    "DROP TRIGGER labeling_assignment_submitted_insert ON labeling_assignment",
    "DROP FUNCTION labeling_task_count_submitted()",
]

POSTGRES_FORWARD = [
    *OLD_TRIGGERS,
    f"""CREATE FUNCTION labeling_task_recount() RETURNS trigger AS $$
       DECLARE
         task bigint;
       BEGIN
         FOREACH task IN ARRAY ARRAY(
             SELECT DISTINCT x FROM unnest(ARRAY[
                 CASE WHEN TG_OP <> 'INSERT' THEN OLD.task_id END,
                 CASE WHEN TG_OP <> 'DELETE' THEN NEW.task_id END]) x
             WHERE x IS NOT NULL ORDER BY x) LOOP
           -- The lock first, the count in a statement of its own: see the migration's docstring.
           PERFORM 1 FROM labeling_task WHERE id = task FOR NO KEY UPDATE;
           {RECOUNT.format(task="task")};
         END LOOP;
         RETURN NULL;
       END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER labeling_assignment_recount_insert AFTER INSERT ON labeling_assignment
       FOR EACH ROW EXECUTE FUNCTION labeling_task_recount()""",
    """CREATE TRIGGER labeling_assignment_recount_update
       AFTER UPDATE OF status, task_id, lease_expires_at ON labeling_assignment
       FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.task_id IS DISTINCT FROM NEW.task_id
                          OR (NEW.status = 'active' AND OLD.lease_expires_at IS DISTINCT FROM NEW.lease_expires_at))
       EXECUTE FUNCTION labeling_task_recount()""",
    """CREATE TRIGGER labeling_assignment_recount_delete AFTER DELETE ON labeling_assignment
       FOR EACH ROW EXECUTE FUNCTION labeling_task_recount()""",
    # Every task's figures, from scratch.
    """UPDATE labeling_task t SET labels_submitted = coalesce(c.submitted, 0), labels_active = coalesce(c.active, 0),
                                  earliest_lease_end = c.lease_end
       FROM labeling_task t2 LEFT JOIN (
           SELECT a.task_id, count(*) FILTER (WHERE a.status = 'submitted') AS submitted,
                  count(*) FILTER (WHERE a.status = 'active') AS active,
                  min(a.lease_expires_at) FILTER (WHERE a.status = 'active') AS lease_end
           FROM labeling_assignment a GROUP BY a.task_id) c ON c.task_id = t2.id
       WHERE t.id = t2.id""",
]

POSTGRES_BACKWARD = [
    "DROP TRIGGER labeling_assignment_recount_delete ON labeling_assignment",
    "DROP TRIGGER labeling_assignment_recount_update ON labeling_assignment",
    "DROP TRIGGER labeling_assignment_recount_insert ON labeling_assignment",
    "DROP FUNCTION labeling_task_recount()",
    # Migration 0008's trigger again.
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


def _on(vendor: str, *statements: str) -> RunCode:
    def run(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == vendor:
            for sql in statements:
                schema_editor.execute(sql, None)

    return run


class Migration(migrations.Migration):
    dependencies = [("labeling", "0009_snapshot_creator_may_be_cleared")]

    operations = [
        migrations.RunPython(
            _on("sqlite", "DROP TRIGGER IF EXISTS taskcompletion_of_prompt"), _on("sqlite", SQLITE_TRIGGER)
        ),
        migrations.AddField(
            model_name="task",
            name="labels_active",
            field=models.PositiveIntegerField(default=0, editable=False),
        ),
        migrations.AddField(
            model_name="task",
            name="earliest_lease_end",
            field=models.DateTimeField(editable=False, null=True),
        ),
        migrations.RunPython(
            _on("sqlite", SQLITE_TRIGGER), _on("sqlite", "DROP TRIGGER IF EXISTS taskcompletion_of_prompt")
        ),
        migrations.RunPython(_on("postgresql", *POSTGRES_FORWARD), _on("postgresql", *POSTGRES_BACKWARD)),
    ]
