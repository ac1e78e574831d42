"""The raw SQL statements of the hand-out's hot path: lock, pick, count, read back.

Raw SQL because these run on every hand-out and submit, where building and compiling the ORM's querysets
cost several times the rest of the work together (the figures are in bench/labeling_load.py's output).
The rule they apply is stated in rules.py (its SQL form); this module only says how each statement reads.
On SQLite (the local demo) the locks are no-ops: it has no row locks and serialises writers at BEGIN.
"""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.contrib.auth import get_user_model
from django.db import connection

from core.roles import is_labeler
from core.rows import columns, instance

from ..models import Assignment, Batch, Completion, Task, TaskCompletion
from .rules import LIVE_SQL, ON_BATCH_SQL, TAKEN_SQL, now_param, open_task_where

if TYPE_CHECKING:
    from django.contrib.auth.models import User


def no_key_lock(*, of: str = "", skip_locked: bool = False) -> str:
    """SELECT's FOR NO KEY UPDATE clause on Postgres; nothing on SQLite (the local demo), which has no
    row locks and serialises writers at BEGIN instead."""
    if not connection.features.has_select_for_no_key_update:
        return ""
    return " FOR NO KEY UPDATE" + (f" OF {of}" if of else "") + (" SKIP LOCKED" if skip_locked else "")


def lock_labeler(labeler: "User") -> None:
    # Serialises this labeler's hand-outs: two tabs or a retry never end with two live assignments.
    # NO KEY UPDATE: does not hold up the labeler's own submits, whose rows reference the user's row.
    if lock := no_key_lock():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {get_user_model()._meta.db_table} WHERE id = %s{lock}", [labeler.pk]
            )


def lock_task(task_id: int) -> None:
    # NO KEY UPDATE: does not block inserts that merely reference the task (rankings, demonstrations).
    list(Task.objects.select_for_update(no_key=True).filter(pk=task_id).values_list("pk", flat=True))


def fresh_batch_and_unfinished(
    batch: Batch, labeler: "User", now: datetime
) -> tuple[Batch, list[tuple[int, int, bool]], bool]:
    """The batch read again (fresh status, overlap and lease), (id, task id, live) of the labeler's
    unfinished assignments in it, oldest first (a live one is the hand-out's answer, lapsed ones are taken
    up again first), and whether the labeler is on the batch (user_may_work_on's rule). One statement, a
    row per unfinished assignment (one row when there is none). Raw SQL: the ORM's values_list, get and
    exists() cost 1.7 ms of CPU per hand-out, this 0.15 ms."""
    attnames, batch_columns = columns(Batch, "b")
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT {batch_columns}, a.id, a.task_id, {LIVE_SQL}, {ON_BATCH_SQL.format(batch="b.id")}
                FROM labeling_batch b LEFT JOIN labeling_assignment a ON a.batch_id = b.id
                     AND a.labeler_id = %s AND a.status IN ('active', 'expired')
                WHERE b.id = %s ORDER BY a.id""",
            [now_param(now), labeler.pk, labeler.pk, labeler.pk, batch.pk],
        )
        rows = cursor.fetchall()
    if not rows:
        raise Batch.DoesNotExist(f"batch {batch.pk} is gone")
    n = len(attnames)
    unfinished = [(r[n], r[n + 1], bool(r[n + 2])) for r in rows if r[n] is not None]
    return instance(Batch, attnames, rows[0][:n]), unfinished, bool(rows[0][n + 3])


def _open_task_sql(
    *, batch: Batch, labeler: "User", now: datetime, tried: list[int], among: set[int]
) -> tuple[str, list[Any]]:
    """SELECT of the open tasks (rules.open_task_where) by id, with their prompt's text and category,
    leaving out `tried` and, if given, keeping to `among`."""
    where, params = open_task_where(batch=batch, labeler=labeler, now=now)
    if tried:
        where.append(f"t.id NOT IN ({', '.join(['%s'] * len(tried))})")
        params.extend(tried)
    if among:
        where.append(f"t.id IN ({', '.join(['%s'] * len(among))})")
        params.extend(sorted(among))
    sql = (
        "SELECT t.id, t.batch_id, t.prompt_id, t.k, p.text, p.category"
        " FROM labeling_task t LEFT JOIN labeling_prompt p ON p.id = t.prompt_id"
        f" WHERE {' AND '.join(where)} ORDER BY t.id"
    )
    return sql, params


def first_open_task(
    *, batch: Batch, labeler: "User", now: datetime, tried: list[int], among: set[int], skip_locked: bool
) -> tuple[Any, ...] | None:
    """Lock the first open task (by id; among `among` if given) and read it with its prompt's text and
    category: (id, batch id, prompt id, k, text, category), or None. Raw SQL because it runs on every
    hand-out, where building and compiling the queryset cost 3 ms of CPU, more than the rest of the
    hand-out together."""
    sql, params = _open_task_sql(batch=batch, labeler=labeler, now=now, tried=tried, among=among)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} LIMIT 1{no_key_lock(of='t', skip_locked=skip_locked)}", params)
        return cursor.fetchone()


def open_task_ids(*, batch: Batch, labeler: "User", now: datetime) -> list[int]:
    """Every open task's id by the SQL form of the rule, unlocked: what first_open_task walks. For the
    test that the ORM and SQL forms agree (rules.open_tasks is the ORM form)."""
    sql, params = _open_task_sql(batch=batch, labeler=labeler, now=now, tried=[], among=set())
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def others_on_and_shown(task: Task, labeler: "User", now: datetime) -> tuple[int, int]:
    """(taken, lapsed): others' assignments of the task that count against its overlap (TAKEN_SQL), and
    others' lapsed leases; and, read in the same statement, what next.completions_shown prefetches for the
    task: task.shown_completions, its TaskCompletions (id, completion, position) with their completion's id
    and text. One statement (a row per completion; one row when the task shows none): the ORM's aggregate
    and prefetch cost 1.6 ms of CPU per hand-out, this 0.15 ms."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT o.taken, o.lapsed, tc.id, tc.completion_id, tc.position, c.text
                FROM (SELECT count(CASE WHEN {TAKEN_SQL} THEN 1 END) AS taken,
                             count(CASE WHEN a.status = 'active' AND a.lease_expires_at < %s THEN 1 END) AS lapsed
                      FROM labeling_assignment a WHERE a.task_id = %s AND a.labeler_id <> %s) o
                LEFT JOIN labeling_taskcompletion tc ON tc.task_id = %s
                LEFT JOIN labeling_completion c ON c.id = tc.completion_id
                ORDER BY tc.position""",
            [now_param(now), now_param(now), task.pk, labeler.pk, task.pk],
        )
        rows = cursor.fetchall()
    task.shown_completions = []
    for _, _, pk, completion_id, position, text in rows:
        if pk is not None:
            shown = instance(
                TaskCompletion, ("id", "completion_id", "position"), (pk, completion_id, position)
            )
            shown.task = task
            shown.completion = instance(Completion, ("id", "text"), (completion_id, text))
            task.shown_completions.append(shown)
    return rows[0][0], rows[0][1]


def assignment_to_submit(*, labeler: "User", pk: int) -> tuple[Assignment | None, bool]:
    """(the labeler's assignment `pk` with its batch's kind, whether the labeler is still on that batch
    (user_may_work_on's rule)), or (None, False) when they have no assignment of that id: what the API's
    submit reads before a submit service reads the assignment again under its row lock. Other fields load
    when read. Raw SQL: the ORM's get with select_related and the membership's exists() cost 1.2 ms of CPU
    per submit, this 0.15 ms."""
    if not 0 < pk < 2**63:  # beyond the id column: nothing (as the ORM answers, without asking)
        return None, False
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT a.id, a.batch_id, b.kind, {ON_BATCH_SQL.format(batch="b.id")}
               FROM labeling_assignment a
               JOIN labeling_batch b ON b.id = a.batch_id WHERE a.id = %s AND a.labeler_id = %s""",
            [labeler.pk, labeler.pk, pk, labeler.pk],
        )
        row = cursor.fetchone()
    if row is None:
        return None, False
    assignment = instance(Assignment, ("id", "batch_id", "labeler_id"), (row[0], row[1], labeler.pk))
    assignment.batch = instance(Batch, ("id", "kind"), row[1:3])
    return assignment, is_labeler(labeler) and bool(row[3])
