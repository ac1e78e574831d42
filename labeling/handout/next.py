"""assignment_next: the next task for a labeler in a batch, and the lock protocol that keeps concurrent
hand-outs under the overlap.

On Postgres a hand-out locks the labeler's row (one hand-out at a time per labeler) and the chosen task's
row (SELECT ... FOR NO KEY UPDATE SKIP LOCKED), then counts again before writing, so concurrent requests
never hand out more assignments than the overlap allows (what counts: rules.py). On SQLite (the local
demo) the locks are no-ops.

Label quality (labeling.quality) plugs in here: a batch gated by a qualification batch hands out nothing
to labelers who have not passed it (NotQualified), and gold tasks come, when one is due, before normal
tasks and to every labeler whatever the overlap; the normal hand-out never gives a gold task.
"""

import random
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.models import Prefetch
from django.utils import timezone

from core.errors import ServiceError
from core.roles import is_labeler
from core.rows import insert, instance

from ..models import Assignment, Batch, Prompt, Task, TaskCompletion
from ..quality.gold import gold_task_candidates
from ..quality.screening import labeler_may_get_production_tasks
from .leases import expire_others
from .rules import Status
from .statements import first_open_task, fresh_batch_and_unfinished, lock_labeler, others_on_and_shown

if TYPE_CHECKING:
    from django.contrib.auth.models import User


class NotOnBatch(ServiceError):
    """The user may not work on this batch (no labeler role, or not among its labelers or groups)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="batch", code="not_on_batch")


class NotQualified(ServiceError):
    """The batch requires a qualification batch this labeler has not passed (the message says what to do)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, field="batch", code="not_qualified")


NOT_A_LABELER = "only labelers get labeling tasks; ask a batch admin for the labeler role."


def not_on(batch: Batch) -> str:
    return f"you are not a labeler of batch {batch.pk}."  # its name is not yours to see


def completions_shown(lookup: str) -> Prefetch:
    """Prefetch of a task's completions (`lookup` leads to Task.task_completions) with their texts, in
    one query, as the list task.shown_completions: what the task pages and the API show."""
    return Prefetch(
        lookup, queryset=TaskCompletion.objects.select_related("completion"), to_attr="shown_completions"
    )


def _pick(
    *, batch: Batch, labeler: "User", now: datetime, tried: list[int], mine: set[int], skip_locked: bool
) -> Task | None:
    """Lock and return the first open task: the labeler's own lapsed one first (`mine`: the tasks of their
    unfinished assignments), then the oldest. Two statements rather than one ordered by "mine first", so
    the usual one walks the batch's tasks in id order and stops at the first open one.
    The task holds its id, batch, prompt and k, and its prompt its id, text and category: what the hand-out
    and the API show. Other fields load when read, as with .only()."""
    first = partial(
        first_open_task, batch=batch, labeler=labeler, now=now, tried=tried, skip_locked=skip_locked
    )
    row = first(among=mine) if mine else None
    row = row or first(among=set())
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
    task: Task, batch: Batch, labeler: "User", now: datetime, *, mine: set[int], overlap: bool = True
) -> Assignment | None:
    """With the task locked: count again (the pick was counted in its statement's snapshot) and hand it
    out if there is still room. None when the task is full after all. Gold tasks skip the count.
    `mine`: the tasks of the labeler's unfinished assignments in the batch (their hand-outs are serialised
    by the labeler lock, so it cannot change meanwhile)."""
    taken, lapsed = others_on_and_shown(task, labeler, now)  # the completions: to shuffle, to show
    if overlap:
        if lapsed:
            # A lapsed lease not expired here is still taken: locked by a submit or a draft save in flight
            # (whose check may have passed while the lease was live: it will commit), or changed since the
            # count (submitted, renewed). Either way it may hold the task when this hand-out commits.
            taken += lapsed - expire_others(task, labeler, now)
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
    return insert(assignment)  # Assignment.objects.create(...) without its 0.25 ms of CPU (core.rows)


class _StartAgain(Exception):
    """The quick pass of a hand-out holds the locks of tasks it found full and has to wait for a task."""


def assignment_next(*, labeler: "User", batch: Batch) -> Assignment | None:
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


def _assignment_next(labeler: "User", batch: Batch, *, quick: bool) -> Assignment | None:
    with transaction.atomic():
        lock_labeler(labeler)
        now = timezone.now()
        batch, unfinished, member = fresh_batch_and_unfinished(batch, labeler, now)
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
        pick = partial(_pick, batch=batch, labeler=labeler, now=now, mine=mine)
        tried: list[int] = []
        if quick:
            # SKIP LOCKED: this pass never waits on a lock, so it needs no savepoint to let go of a task it
            # finds full after all (two statements fewer on every hand-out); such a task stays locked until
            # the transaction ends.
            while (task := pick(tried=tried, skip_locked=True)) is not None:
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
            task = pick(tried=tried, skip_locked=True) or pick(tried=tried, skip_locked=False)
            assignment = _hand_out(task, batch, labeler, now, mine=mine) if task is not None else None
            if assignment is not None or task is None:
                transaction.savepoint_commit(savepoint)
                return assignment
            transaction.savepoint_rollback(savepoint)
            tried.append(task.pk)
