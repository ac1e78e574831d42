"""Handing out work: the next task for a labeler in a batch, under a lease, never past the batch's overlap.

On Postgres a hand-out locks the labeler's row (one hand-out at a time per labeler) and the chosen task's
row (SELECT ... FOR NO KEY UPDATE SKIP LOCKED), then counts again before writing, so concurrent requests
never hand out more assignments than the overlap allows. On SQLite (the local demo) the locks are no-ops.

A task counts against its overlap for every submitted assignment and every live one (status active and
lease not yet expired). An expired lease frees the task for others; its holder may still submit late
unless the task went to someone else in the meantime. A lapsed lease whose row is locked counts as well:
its holder is submitting (or saving a draft) right now, past a check made while the lease was live, so
handing the task out again would end with one label more than the overlap.

Label quality (labeling.quality) plugs in here: a batch gated by a qualification batch hands out nothing
to labelers who have not passed it (NotQualified), and gold tasks come, when one is due, before normal
tasks and to every labeler whatever the overlap; the normal hand-out never gives a gold task.
"""

import json
import random
from dataclasses import dataclass
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import (
    Count,
    Exists,
    IntegerField,
    OuterRef,
    Prefetch,
    Q,
    QuerySet,
    Subquery,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from ..errors import AssignmentUnavailable, ServiceError
from ..models import Assignment, Batch, Completion, Prompt, Task, TaskCompletion
from ..quality.gold import gold_task_candidates, non_gold_q
from ..quality.screening import labeler_may_get_production_tasks
from ..roles import is_labeler
from ..rows import columns, insert, instance, update
from ..storable import unstorable

# Room for the longest text a task page takes (a 50,000-character demonstration, up to 4 bytes a character
# in UTF-8: labeling.services.demonstrations) with the rest of the page's state.
DRAFT_MAX_BYTES = 250_000
SKIP_REASON_MAX_CHARS = 2_000

Status = Assignment.Status
FINISHED = (Status.SUBMITTED, Status.SKIPPED)


class NotOnBatch(ServiceError):
    """The user may not work on this batch (no labeler role, or not among its labelers or groups)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="batch", code="not_on_batch")


class NotQualified(ServiceError):
    """The batch requires a qualification batch this labeler has not passed (the message says what to do)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="batch", code="not_qualified")


def live_q(now) -> Q:
    """Assignments that hold their task right now."""
    return Q(status=Status.ACTIVE, lease_expires_at__gte=now)


def taken_q(now) -> Q:
    """Assignments that count against the task's overlap: submitted, or live."""
    return Q(status=Status.SUBMITTED) | live_q(now)


# The same two rules in SQL, for the hand-out's raw statements (assignment alias `a`, one %s: now, which
# goes through _now_param so that SQLite compares it as it stores it).
LIVE_SQL = "(a.status = 'active' AND a.lease_expires_at >= %s)"
TAKEN_SQL = f"(a.status = 'submitted' OR {LIVE_SQL})"


def _now_param(now):
    return connection.ops.adapt_datetimefield_value(now)


def _no_key_lock(*, of: str = "", skip_locked: bool = False) -> str:
    """SELECT's FOR NO KEY UPDATE clause on Postgres; nothing on SQLite (the local demo), which has no
    row locks and serialises writers at BEGIN instead."""
    if not connection.features.has_select_for_no_key_update:
        return ""
    return " FOR NO KEY UPDATE" + (f" OF {of}" if of else "") + (" SKIP LOCKED" if skip_locked else "")


# user_may_work_on's rule in SQL, for statements that read it along with other things: {batch} is the
# batch's id (a column or %s); two %s parameters: the user's id.
ON_BATCH_SQL = """(EXISTS (SELECT 1 FROM labeling_batch_labelers WHERE batch_id = {batch} AND user_id = %s)
                   OR EXISTS (SELECT 1 FROM labeling_batch_groups g
                              JOIN auth_user_groups m ON m.group_id = g.group_id
                              WHERE g.batch_id = {batch} AND m.user_id = %s))"""


def user_may_work_on(*, user, batch: Batch) -> bool:
    """A labeler (role) listed in batch.labelers or in one of batch.groups. The batch's status does not
    matter here: it decides whether new work is handed out, not who may finish work already held."""
    if not is_labeler(user):
        return False
    # Listed or through a group, in one statement: this runs on every hand-out and submit, where the
    # ORM's exists() queries (one or two) cost 0.5 to 1 ms of CPU and this one 0.1 ms.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {ON_BATCH_SQL.format(batch='%s')}", [batch.pk, user.pk, batch.pk, user.pk])
        return bool(cursor.fetchone()[0])


NOT_A_LABELER = "only labelers get labeling tasks; ask a batch admin for the labeler role."


def not_on(batch: Batch) -> str:
    return f"you are not a labeler of batch {batch.pk}."  # its name is not yours to see


def open_tasks(*, batch: Batch, labeler, now) -> QuerySet[Task]:
    """Tasks of the batch the labeler could be given now: room left under the overlap (others' submitted
    and live assignments), not submitted or skipped by this labeler, and for demonstrations not a response
    to the labeler's own prompt. (The hand-out applies the same rules in SQL: _first_open_task.)"""
    # Built with as few queryset clones as it takes: this runs on every hand-out.
    taken_by_others = (
        Assignment.objects.filter(taken_q(now), ~Q(labeler=labeler), task=OuterRef("pk"))
        .order_by()
        .values("task")
        .annotate(n=Count("pk"))
        .values("n")
    )
    finished_by_me = Assignment.objects.filter(task=OuterRef("pk"), labeler=labeler, status__in=FINISHED)
    tasks = (
        # labels_submitted: a first, cheap filter, so tasks with enough submitted labels are passed over
        # without counting their assignments. It never overcounts, so the exact count (taken) decides.
        # (Not the hand-out's labels_active filter: this count includes the labeler's own live task.)
        Task.objects.filter(non_gold_q(), batch=batch, labels_submitted__lt=batch.overlap)
        .annotate(taken=Coalesce(Subquery(taken_by_others, output_field=IntegerField()), Value(0)))
        .filter(~Exists(finished_by_me), taken__lt=batch.overlap)
    )
    if batch.kind == Batch.Kind.DEMONSTRATION:
        own_prompt = Task.objects.filter(pk=OuterRef("pk"), prompt__author=labeler)
        tasks = tasks.exclude(Exists(own_prompt))
    return tasks


def completions_shown(lookup: str) -> Prefetch:
    """Prefetch of a task's completions (`lookup` leads to Task.task_completions) with their texts, in
    one query, as the list task.shown_completions: what the task pages and the API show."""
    return Prefetch(
        lookup, queryset=TaskCompletion.objects.select_related("completion"), to_attr="shown_completions"
    )


def _others_on_and_shown(task: Task, labeler, now) -> tuple[int, int]:
    """(taken, lapsed): others' assignments of the task that count against its overlap (taken_q), and
    others' lapsed leases; and, read in the same statement, what completions_shown prefetches for the task:
    task.shown_completions, its TaskCompletions (id, completion, position) with their completion's id and
    text. One statement (a row per completion; one row when the task shows none): the ORM's aggregate and
    prefetch cost 1.6 ms of CPU per hand-out, this 0.15 ms."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT o.taken, o.lapsed, tc.id, tc.completion_id, tc.position, c.text
                FROM (SELECT count(CASE WHEN {TAKEN_SQL} THEN 1 END) AS taken,
                             count(CASE WHEN a.status = 'active' AND a.lease_expires_at < %s THEN 1 END) AS lapsed
                      FROM labeling_assignment a WHERE a.task_id = %s AND a.labeler_id <> %s) o
                LEFT JOIN labeling_taskcompletion tc ON tc.task_id = %s
                LEFT JOIN labeling_completion c ON c.id = tc.completion_id
                ORDER BY tc.position""",
            [_now_param(now), _now_param(now), task.pk, labeler.pk, task.pk],
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


def _lock_labeler(labeler) -> None:
    # Serialises this labeler's hand-outs: two tabs or a retry never end with two live assignments.
    # NO KEY UPDATE: does not hold up the labeler's own submits, whose rows reference the user's row.
    if lock := _no_key_lock():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {get_user_model()._meta.db_table} WHERE id = %s{lock}", [labeler.pk]
            )


def _lock_task(task_id: int) -> None:
    # NO KEY UPDATE: does not block inserts that merely reference the task (rankings, demonstrations).
    list(Task.objects.select_for_update(no_key=True).filter(pk=task_id).values_list("pk", flat=True))


def _expire_others(task: Task, labeler, now) -> int:
    """Mark others' lapsed leases on this task expired; how many were. Rows locked right now (their holder
    is submitting or saving a draft) are left alone, as are rows that changed since they were counted."""
    lapsed = (
        Assignment.objects.select_for_update(skip_locked=True)
        .filter(task=task, status=Status.ACTIVE, lease_expires_at__lt=now)
        .exclude(labeler=labeler)
    )
    return Assignment.objects.filter(pk__in=lapsed.values("pk")).update(status=Status.EXPIRED)


def _first_open_task(*, batch: Batch, labeler, now, tried: list[int], among: set[int], skip_locked: bool):
    """open_tasks' rules as one SQL statement that locks the first open task (by id; among `among` if
    given) and reads it with its prompt's text and category: (id, batch id, prompt id, k, text, category),
    or None. Raw SQL because it runs on every hand-out, where building and compiling the queryset cost
    3 ms of CPU, more than the rest of the hand-out together."""
    where = [
        "t.batch_id = %s",
        "NOT t.is_gold",  # gold tasks come through gold_task_candidates only (quality.gold.non_gold_q)
        # First, cheap filters on the task's own row (see open_tasks); the exact count below decides.
        "t.labels_submitted < %s",
        "(t.labels_submitted + t.labels_active < %s OR t.earliest_lease_end < %s)",
        """NOT EXISTS (SELECT 1 FROM labeling_assignment a WHERE a.task_id = t.id AND a.labeler_id = %s
                       AND a.status IN ('submitted', 'skipped'))""",
        f"""(SELECT count(*) FROM labeling_assignment a WHERE a.task_id = t.id AND a.labeler_id <> %s
             AND {TAKEN_SQL}) < %s""",
    ]
    params = [batch.pk, batch.overlap, batch.overlap, _now_param(now)]
    params += [labeler.pk, labeler.pk, _now_param(now), batch.overlap]
    if batch.kind == Batch.Kind.DEMONSTRATION:  # not a response to the labeler's own prompt
        where.append("(p.author_id IS NULL OR p.author_id <> %s)")
        params.append(labeler.pk)
    if tried:
        where.append(f"t.id NOT IN ({', '.join(['%s'] * len(tried))})")
        params.extend(tried)
    if among:
        where.append(f"t.id IN ({', '.join(['%s'] * len(among))})")
        params.extend(sorted(among))
    sql = (
        "SELECT t.id, t.batch_id, t.prompt_id, t.k, p.text, p.category"
        " FROM labeling_task t LEFT JOIN labeling_prompt p ON p.id = t.prompt_id"
        f" WHERE {' AND '.join(where)} ORDER BY t.id LIMIT 1{_no_key_lock(of='t', skip_locked=skip_locked)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _pick(*, batch: Batch, labeler, now, tried: list[int], mine: set[int], skip_locked: bool) -> Task | None:
    """Lock and return the first open task: the labeler's own lapsed one first (`mine`: the tasks of their
    unfinished assignments), then the oldest. Two statements rather than one ordered by "mine first", so
    the usual one walks the batch's tasks in id order and stops at the first open one.
    The task holds its id, batch, prompt and k, and its prompt its id, text and category: what the hand-out
    and the API show. Other fields load when read, as with .only()."""
    args = dict(batch=batch, labeler=labeler, now=now, tried=tried, skip_locked=skip_locked)
    row = _first_open_task(**args, among=mine) if mine else None
    row = row or _first_open_task(**args, among=set())
    if row is None:
        return None
    task = instance(Task, ("id", "batch_id", "prompt_id", "k"), row[:4])
    prompt_id, text, category = row[2], row[4], row[5]
    task.prompt = (
        None
        if prompt_id is None
        else instance(Prompt, ("id", "text", "category"), (prompt_id, text, category))
    )
    return task


def _hand_out(
    task: Task, batch: Batch, labeler, now, *, mine: set[int], overlap: bool = True
) -> Assignment | None:
    """With the task locked: count again (the pick was counted in its statement's snapshot) and hand it
    out if there is still room. None when the task is full after all. Gold tasks skip the count.
    `mine`: the tasks of the labeler's unfinished assignments in the batch (their hand-outs are serialised
    by the labeler lock, so it cannot change meanwhile)."""
    taken, lapsed = _others_on_and_shown(task, labeler, now)  # the completions: to shuffle, to show
    if overlap:
        if lapsed:
            # A lapsed lease not expired here is still taken: locked by a submit or a draft save in flight
            # (whose check may have passed while the lease was live: it will commit), or changed since the
            # count (submitted, renewed). Either way it may hold the task when this hand-out commits.
            taken += lapsed - _expire_others(task, labeler, now)
        if taken >= batch.overlap:
            return None
    expires = now + timedelta(minutes=batch.lease_minutes)
    if task.pk in mine:
        # My own lapsed lease on a task that still has room: take it up again, draft kept. Skip it if my
        # other tab is saving or submitting it right now (its row is locked), rather than wait on it.
        own = (
            Assignment.objects.select_for_update(skip_locked=True).filter(task=task, labeler=labeler).first()
        )
        if own is None:
            return None
        own.status = Status.ACTIVE
        own.lease_expires_at = expires
        own.save(update_fields=["status", "lease_expires_at"])
        own.task, own.batch = task, batch  # loaded already: callers show them without a query
        return own
    order = [tc.completion_id for tc in task.shown_completions]
    random.shuffle(order)  # each labeler sees the outputs in their own order, remembered for the assignment
    assignment = Assignment(
        task=task, batch=batch, labeler=labeler, lease_expires_at=expires, display_order=order
    )
    return insert(assignment)  # Assignment.objects.create(...) without its 0.25 ms of CPU (labeling.rows)


def _fresh_batch_and_unfinished(
    batch: Batch, labeler, now
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
            [_now_param(now), labeler.pk, labeler.pk, labeler.pk, batch.pk],
        )
        rows = cursor.fetchall()
    if not rows:
        raise Batch.DoesNotExist(f"batch {batch.pk} is gone")
    n = len(attnames)
    unfinished = [(r[n], r[n + 1], bool(r[n + 2])) for r in rows if r[n] is not None]
    return instance(Batch, attnames, rows[0][:n]), unfinished, bool(rows[0][n + 3])


class _StartAgain(Exception):
    """The quick pass of a hand-out holds the locks of tasks it found full and has to wait for a task."""


def assignment_next(*, labeler, batch: Batch) -> Assignment | None:
    """The labeler's live assignment in the batch, or a new one on a task that still needs labels, or None
    when nothing is left for them (or the batch is not active). Raises NotOnBatch for outsiders and
    NotQualified for labelers the batch's qualification batch keeps out, and Batch.DoesNotExist when the
    batch is gone. Only `batch.pk` is read of `batch`: the batch is read again under the labeler's lock.
    The assignment comes with its batch, task, prompt and completions loaded."""
    if not is_labeler(labeler):
        raise NotOnBatch(NOT_A_LABELER)
    try:
        return _assignment_next(labeler, batch, quick=True)
    except _StartAgain:  # rare: the locks it held are released with its transaction
        return _assignment_next(labeler, batch, quick=False)


def _assignment_next(labeler, batch: Batch, *, quick: bool) -> Assignment | None:
    with transaction.atomic():
        _lock_labeler(labeler)
        now = timezone.now()
        batch, unfinished, member = _fresh_batch_and_unfinished(batch, labeler, now)
        if not member:  # user_may_work_on's rule, read in the same statement
            raise NotOnBatch(not_on(batch))
        live = [pk for pk, _, is_live in unfinished if is_live]
        if live:
            shown = Assignment.objects.select_related("batch", "task__prompt")
            return shown.prefetch_related(completions_shown("task__task_completions")).get(pk=live[0])
        mine = {task_id for _, task_id, _ in unfinished}
        if batch.status != Batch.Status.ACTIVE:
            return None
        allowed, why = labeler_may_get_production_tasks(labeler=labeler, batch=batch)
        if not allowed:
            raise NotQualified(why)
        gold = gold_task_candidates(labeler=labeler, batch=batch)
        gold_task = gold.select_related("prompt").first() if gold is not None else None
        if gold_task is not None:  # due now; every labeler gets each gold task, so no overlap count
            return _hand_out(gold_task, batch, labeler, now, mine=mine, overlap=False)
        args = dict(batch=batch, labeler=labeler, now=now, mine=mine)
        tried: list[int] = []
        if quick:
            # SKIP LOCKED: this pass never waits on a lock, so it needs no savepoint to let go of a task it
            # finds full after all (two statements fewer on every hand-out); such a task stays locked until
            # the transaction ends.
            while (task := _pick(**args, tried=tried, skip_locked=True)) is not None:
                if (assignment := _hand_out(task, batch, labeler, now, mine=mine)) is not None:
                    return assignment
                tried.append(task.pk)
            if tried:  # about to wait on a lock while holding others: start again, holding none
                raise _StartAgain
        while True:
            # One task lock at a time (a full task's lock is released with its savepoint), so waiting on
            # a task another request is handing out cannot deadlock.
            savepoint = transaction.savepoint()
            # Skip tasks being handed out right now; if all open tasks are, wait for one rather than
            # tell the labeler there is nothing left.
            task = _pick(**args, tried=tried, skip_locked=True) or _pick(
                **args, tried=tried, skip_locked=False
            )
            assignment = _hand_out(task, batch, labeler, now, mine=mine) if task is not None else None
            if assignment is not None or task is None:
                transaction.savepoint_commit(savepoint)
                return assignment
            transaction.savepoint_rollback(savepoint)
            tried.append(task.pk)


def assignment_to_submit(*, labeler, pk: int) -> tuple[Assignment | None, bool]:
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


def assignment_check_still_mine(assignment: Assignment) -> None:
    """For submit services, inside their transaction with the assignment row locked: a live lease is
    fine; a lapsed one is fine too unless the task has since been given to enough other labelers."""
    if assignment.status in FINISHED:
        raise AssignmentUnavailable(f"this task was already {assignment.get_status_display().lower()}.")
    now = timezone.now()
    if assignment.status == Status.ACTIVE and assignment.lease_expires_at >= now:
        return
    _lock_task(assignment.task_id)  # no hand-out of this task while we count
    others = (
        Assignment.objects.filter(task_id=assignment.task_id)
        .exclude(pk=assignment.pk)
        .filter(taken_q(now))
        .count()
    )
    if others >= assignment.batch.overlap:
        raise AssignmentUnavailable(
            "your lease on this task expired and it was given to another labeler; your work was not saved."
        )


def assignment_given_away(*, assignment: Assignment) -> bool:
    """Read only: has this lapsed assignment's task gone to enough other labelers that a submission
    would be refused? (The submit services decide again, under lock.)"""
    now = timezone.now()
    if assignment.status in FINISHED or (
        assignment.status == Status.ACTIVE and assignment.lease_expires_at >= now
    ):
        return False
    others = (
        Assignment.objects.filter(task_id=assignment.task_id).exclude(pk=assignment.pk).filter(taken_q(now))
    )
    return others.count() >= assignment.batch.overlap


def assignment_mark_submitted(assignment: Assignment) -> None:
    assignment.status = Status.SUBMITTED
    assignment.finished_at = timezone.now()
    assignment.draft = {}
    update(assignment, ["status", "finished_at", "draft"])  # save(update_fields=...), cheaper (labeling.rows)


def _locked(assignment: Assignment) -> Assignment:
    return Assignment.objects.select_for_update(of=("self",)).select_related("batch").get(pk=assignment.pk)


def assignment_skip(*, assignment: Assignment, reason: str) -> Assignment:
    """Give the task back with a reason; it will not be offered to this labeler again. Idempotent."""
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("say why you skip this task (a few words are enough).", field="reason")
    if len(reason) > SKIP_REASON_MAX_CHARS:
        raise ServiceError(f"keep the reason under {SKIP_REASON_MAX_CHARS} characters.", field="reason")
    with transaction.atomic():
        locked = _locked(assignment)
        if locked.status == Status.SKIPPED:
            return locked
        if locked.status == Status.SUBMITTED:
            raise AssignmentUnavailable("this task was already submitted; it cannot be skipped.")
        locked.status = Status.SKIPPED
        locked.skip_reason = reason
        locked.finished_at = timezone.now()
        locked.draft = {}
        locked.save(update_fields=["status", "skip_reason", "finished_at", "draft"])
    return locked


def assignment_save_draft(*, assignment: Assignment, draft: dict) -> Assignment:
    """Keep unsubmitted work server side. Saving renews a live lease (the labeler is at work); on a lapsed
    lease it saves only if the task was not given away meanwhile."""
    if not isinstance(draft, dict):
        raise ServiceError("a draft must be a JSON object.", field="draft")
    if problem := unstorable(draft):
        raise ServiceError(f"the draft {problem}.", field="draft")
    if len(json.dumps(draft, ensure_ascii=False).encode()) > DRAFT_MAX_BYTES:
        raise ServiceError(f"the draft is larger than {DRAFT_MAX_BYTES // 1000} kB.", field="draft")
    with transaction.atomic():
        locked = _locked(assignment)
        if locked.status in FINISHED:
            raise AssignmentUnavailable(
                f"this task was already {locked.get_status_display().lower()}; the draft was not saved."
            )
        now = timezone.now()
        fields = ["draft"]
        if locked.status == Status.ACTIVE and locked.lease_expires_at >= now:
            locked.lease_expires_at = now + timedelta(minutes=locked.batch.lease_minutes)
            fields.append("lease_expires_at")
        else:
            assignment_check_still_mine(locked)
        locked.draft = draft
        locked.save(update_fields=fields)
    return locked


# Selectors: what the labeler home (and the API) shows.


@dataclass(frozen=True)
class BatchSummary:
    batch: Batch
    tasks_left: int  # tasks this labeler could take now, their live one included
    done_by_me: int  # assignments this labeler submitted in the batch
    total_tasks: int
    live_assignment_id: int | None  # the task this labeler holds right now, if any
    blocked: str = ""  # why no new task is handed out to this labeler (a qualification batch), if so


def batches_open_for(*, user) -> list[BatchSummary]:
    """Batches the user may work on that are active (or where they still hold a live assignment), with
    what is left for them. Non-labelers get an empty list."""
    if not is_labeler(user):
        return []
    now = timezone.now()
    live = dict(
        Assignment.objects.filter(labeler=user)
        .filter(live_q(now))
        .order_by("-pk")
        .values_list("batch_id", "pk")
    )
    member = Q(labelers=user) | Q(groups__in=user.groups.all())
    batches = (
        Batch.objects.filter(member)
        .filter(Q(status=Batch.Status.ACTIVE) | Q(pk__in=live.keys()))
        .distinct()
        .annotate(total_tasks=Count("tasks", distinct=True))
        .order_by("deadline", "pk")
    )
    summaries = []
    for batch in batches:
        blocked = ""
        if batch.status == Batch.Status.ACTIVE:
            allowed, why = labeler_may_get_production_tasks(labeler=user, batch=batch)
            blocked = "" if allowed else why
            finished = Assignment.objects.filter(task=OuterRef("pk"), labeler=user, status__in=FINISHED)
            left = open_tasks(batch=batch, labeler=user, now=now).count()
            if batch.is_qualification or batch.gold_rate > 0:
                gold = Task.objects.filter(batch=batch).exclude(non_gold_q()).exclude(Exists(finished))
                left += gold.count()
        else:
            left = 1 if batch.pk in live else 0
        if blocked and batch.pk not in live:
            left = 0
        done = Assignment.objects.filter(batch=batch, labeler=user, status=Status.SUBMITTED).count()
        summaries.append(BatchSummary(batch, left, done, batch.total_tasks, live.get(batch.pk), blocked))
    return summaries


def labeler_counts(*, user) -> dict[str, dict[str, int]]:
    """Submitted work, today and in total, per batch kind: {"ranking": {"today": 3, "total": 40}, ...}
    plus an "all" entry. "Today" is the calendar day in the site's time zone."""
    start_of_day = timezone.localtime().replace(hour=0, minute=0, second=0, microsecond=0)
    rows = (
        Assignment.objects.filter(labeler=user, status=Status.SUBMITTED)
        .values("batch__kind")
        .annotate(total=Count("pk"), today=Count("pk", filter=Q(finished_at__gte=start_of_day)))
    )
    counts = {kind: {"today": 0, "total": 0} for kind in Batch.Kind.values}
    for row in rows:
        counts[row["batch__kind"]] = {"today": row["today"], "total": row["total"]}
    counts["all"] = {
        "today": sum(c["today"] for c in counts.values()),
        "total": sum(c["total"] for c in counts.values()),
    }
    return counts
