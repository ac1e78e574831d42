"""What counts against a task's overlap, stated once in each of its two forms, side by side.

A task counts against its overlap for every submitted assignment, every pending one (submitted, its undo
window still open: services.undo), and every live one (status active and lease not yet expired). Undo turns a
pending assignment back into a live one in one transaction, so the task is held throughout. An expired
lease frees the task for others; its holder may still submit late
unless the task went to someone else in the meantime (leases.assignment_check_still_mine). A lapsed lease
whose row is locked counts as well: its holder is submitting (or saving a draft) right now, past a check
made while the lease was live, so handing the task out again would end with one label more than the
overlap (next._hand_out).

The rule has two forms, which tests/labeling/test_handout_rule.py checks pick the same tasks on random data
(for a labeler who holds no live lease in the batch: one who does is given that task, and never picks):
- the ORM form (live_q, taken_q, open_tasks): for pages, selectors and the submit checks;
- the SQL form (LIVE_SQL, TAKEN_SQL, open_task_where): for the hand-out's raw statements (statements.py),
  where building a queryset would cost more than the rest of the hand-out together.
A third, cheaper statement of it sits on the task's own row: Task.labels_submitted, labels_active and
earliest_lease_end, kept by the Postgres trigger of migration 0010 (labeling/migrations/0010_task_live_leases.py).
The SQL form uses them as first filters only; the exact count decides. (They leave pending assignments out:
an undercount, which only lets more tasks through to the exact count.)
"""

from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.models import Count, Exists, IntegerField, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from core.roles import is_labeler

from ..models import Assignment, Batch, Task
from ..quality.gold import non_gold_q

if TYPE_CHECKING:
    from django.contrib.auth.models import User

Status = Assignment.Status
FINISHED = (Status.SUBMITTED, Status.PENDING, Status.SKIPPED)
HELD = (Status.SUBMITTED, Status.PENDING)  # done by their labeler, whether or not the undo window is open


# --- the ORM form ---------------------------------------------------------------------------------------


def live_q(now: datetime) -> Q:
    """Assignments that hold their task right now."""
    return Q(status=Status.ACTIVE, lease_expires_at__gte=now)


def taken_q(now: datetime) -> Q:
    """Assignments that count against the task's overlap: submitted (undo window open or not), or live."""
    return Q(status__in=HELD) | live_q(now)


def open_tasks(*, batch: Batch, labeler: "User", now: datetime) -> QuerySet[Task]:
    """Tasks of the batch the labeler could be given now: room left under the overlap (others' submitted
    and live assignments), not submitted or skipped by this labeler, not gold (gold tasks come through
    quality.gold only), and for demonstrations not a response to the labeler's own prompt."""
    # Built with as few queryset clones as it takes: this runs on every labeler home.
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
        # (Not the SQL form's labels_active filter: this count includes the labeler's own live task.)
        Task.objects.filter(non_gold_q(), batch=batch, labels_submitted__lt=batch.overlap)
        .annotate(taken=Coalesce(Subquery(taken_by_others, output_field=IntegerField()), Value(0)))
        .filter(~Exists(finished_by_me), taken__lt=batch.overlap)
    )
    if batch.kind == Batch.Kind.DEMONSTRATION:
        own_prompt = Task.objects.filter(pk=OuterRef("pk"), prompt__author=labeler)
        tasks = tasks.exclude(Exists(own_prompt))
    return tasks


# --- the SQL form (assignment alias `a`, task alias `t`, prompt alias `p`) -------------------------------

# One %s each: now, which goes through now_param so that SQLite compares it as it stores it.
LIVE_SQL = "(a.status = 'active' AND a.lease_expires_at >= %s)"
TAKEN_SQL = f"(a.status IN ('submitted', 'pending') OR {LIVE_SQL})"


def now_param(now):
    return connection.ops.adapt_datetimefield_value(now)


def open_task_where(*, batch: Batch, labeler: "User", now: datetime) -> tuple[list[str], list[Any]]:
    """open_tasks' rules as SQL conditions on `labeling_task t LEFT JOIN labeling_prompt p`, with their
    parameters: what the hand-out's pick (statements.first_open_task) filters on."""
    where = [
        "t.batch_id = %s",
        "NOT t.is_gold",  # gold tasks come through gold_task_candidates only (quality.gold.non_gold_q)
        # First, cheap filters on the task's own row (migration 0010's trigger); the exact count decides.
        "t.labels_submitted < %s",
        "(t.labels_submitted + t.labels_active < %s OR t.earliest_lease_end < %s)",
        """NOT EXISTS (SELECT 1 FROM labeling_assignment a WHERE a.task_id = t.id AND a.labeler_id = %s
                       AND a.status IN ('submitted', 'pending', 'skipped'))""",
        f"""(SELECT count(*) FROM labeling_assignment a WHERE a.task_id = t.id AND a.labeler_id <> %s
             AND {TAKEN_SQL}) < %s""",
    ]
    params = [batch.pk, batch.overlap, batch.overlap, now_param(now)]
    params += [labeler.pk, labeler.pk, now_param(now), batch.overlap]
    if batch.kind == Batch.Kind.DEMONSTRATION:  # not a response to the labeler's own prompt
        where.append("(p.author_id IS NULL OR p.author_id <> %s)")
        params.append(labeler.pk)
    return where, params


# --- who may work on a batch ------------------------------------------------------------------------------

# user_may_work_on's rule in SQL, for statements that read it along with other things: {batch} is the
# batch's id (a column or %s); two %s parameters: the user's id.
ON_BATCH_SQL = """(EXISTS (SELECT 1 FROM labeling_batch_labelers WHERE batch_id = {batch} AND user_id = %s)
                   OR EXISTS (SELECT 1 FROM labeling_batch_groups g
                              JOIN auth_user_groups m ON m.group_id = g.group_id
                              WHERE g.batch_id = {batch} AND m.user_id = %s))"""


def user_may_work_on(*, user: "User", batch: Batch) -> bool:
    """A labeler (role) listed in batch.labelers or in one of batch.groups. The batch's status does not
    matter here: it decides whether new work is handed out, not who may finish work already held."""
    if not is_labeler(user):
        return False
    # Listed or through a group, in one statement: this runs on every hand-out and submit, where the
    # ORM's exists() queries (one or two) cost 0.5 to 1 ms of CPU and this one 0.1 ms.
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {ON_BATCH_SQL.format(batch='%s')}", [batch.pk, user.pk, batch.pk, user.pk])
        return bool(cursor.fetchone()[0])
