"""Gold tasks: tasks with an admin's reference ranking, mixed into a batch at its gold rate. (Marking a
task gold is a write: labeling.services.gold.)

A labeler's gold accuracy is the pairwise agreement of their ranking with the reference (the share of
pairs both order strictly that they order the same way; ties on either side are left out).

Mixing: each labeler's stream of tasks in a batch is cut into blocks of 1 / gold_rate tasks, and one
task of every block, at a place drawn at random per labeler and block (seeded, so it is a function of
the database state), is a gold task. Over a long stream the share of gold tasks is the gold rate; a
labeler cannot predict which task is gold, and no two labelers see them at the same places.
Gold tasks are given to every labeler once, whatever the batch's overlap.
"""

import hashlib
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db.models import CharField, Count, Exists, OuterRef, Q, QuerySet, Value
from django.db.models.functions import MD5, Cast, Concat

from ..models import Assignment, Batch, Task
from .agreement import RankingRow, pair_agreement
from .intervals import Estimate, pooled_ratio

if TYPE_CHECKING:
    from django.contrib.auth.models import User

# Pending (submitted, undo window open) is finished for the hand-out: never handed out to the same labeler again.
FINISHED = (Assignment.Status.SUBMITTED, Assignment.Status.PENDING, Assignment.Status.SKIPPED)


def gold_accuracy_by_labeler(rows: Iterable[RankingRow]) -> dict[int, Estimate]:
    """{labeler id: gold accuracy} over the rankings of gold tasks among `rows`; interval by tasks."""
    agree: dict[int, list[int]] = defaultdict(list)
    compared: dict[int, list[int]] = defaultdict(list)
    for row in rows:
        if row.gold_tiers is None:
            continue
        a, n = pair_agreement(row.tiers, row.gold_tiers)
        agree[row.labeler_id].append(a)
        compared[row.labeler_id].append(n)
    return {u: pooled_ratio(agree[u], compared[u]) for u in sorted(compared)}


def _uniform(*parts: object) -> float:
    """A number in [0, 1) fixed by `parts` (not Python's hash, which changes between processes)."""
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).hexdigest()
    return int(digest[:13], 16) / 16**13


def gold_due(*, gold_done: int, normal_done: int, rate: float, seed: str) -> bool:
    """Whether the next task of this labeler's stream should be a gold task: block j (of 1/rate tasks)
    holds its gold slot at position floor((j + u_j) / rate), u_j uniform in [0, 1) seeded per block."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    position = gold_done + normal_done  # index (from 0) of the task about to be handed out
    slots, block = 0, 0
    while int((block + _uniform(seed, block)) / rate) <= position:
        slots += 1
        block += 1
    return gold_done < slots


def _seeded_order(tasks: QuerySet[Task], seed: str) -> QuerySet[Task]:
    key = MD5(Concat(Value(f"{seed}:"), Cast("pk", output_field=CharField())))
    return tasks.annotate(gold_order=key).order_by("gold_order", "pk")


def gold_task_candidates(*, labeler: "User", batch: Batch) -> QuerySet[Task] | None:
    """The gold tasks to give `labeler` next in `batch`, in an order random per labeler (seeded), or
    None when no gold task is due now (no gold rate, none left, or not yet this labeler's turn).
    In a qualification batch every task is gold and always due.

    Hook for labeling.handout.next.assignment_next: when this returns tasks, hand out the first
    one free of the overlap limit (gold tasks go to every labeler); otherwise hand out a normal task and
    never a gold one (see docs/quality.md)."""
    if not batch.is_qualification and batch.gold_rate <= 0:
        return None  # the usual case, answered before building any query: it runs on every hand-out
    seed = f"gold:{batch.pk}:{labeler.pk}"
    finished = Assignment.objects.filter(task=OuterRef("pk"), labeler=labeler, status__in=FINISHED)
    left = Task.objects.filter(batch=batch, is_gold=True).exclude(Exists(finished))
    if batch.is_qualification:
        return _seeded_order(left, seed) if left.exists() else None
    if not left.exists():
        return None
    done = Assignment.objects.filter(batch=batch, labeler=labeler, status__in=FINISHED).aggregate(
        gold=Count("pk", filter=Q(task__is_gold=True)), normal=Count("pk", filter=Q(task__is_gold=False))
    )
    if not gold_due(gold_done=done["gold"], normal_done=done["normal"], rate=batch.gold_rate, seed=seed):
        return None
    return _seeded_order(left, seed)


def non_gold_q() -> Q:
    """Filter of Task for the normal hand-out: gold tasks only ever come through gold_task_candidates."""
    return Q(is_gold=False)
