"""Storing a ranking: the submission, its per-completion ratings and its comparison pairs, in one
transaction. What makes a ranking valid is labeling.ranking_rules, which the page and the API share.
Inside the undo window a submitted ranking waits on its assignment and is written when the window closes
(labeling.services.undo); ranking_write is that writing."""

from typing import Any

from django.db import connection, transaction

from core.errors import InvalidRanking
from core.rows import columns, insert, instance

from ..handout.leases import assignment_check_still_mine, assignment_hold_for_undo, assignment_mark_submitted
from ..models import Assignment, Batch, Ranking, Task
from ..ranking_rules import comparison_pairs, validate_ranking

# A submit's statements, in SQL: the ORM's versions (select_for_update().select_related().get(), the
# completions' values_list, create, two bulk_creates, save) cost 2.8 ms of CPU per submit, these 0.5 ms.


def ranking_locked(assignment: Assignment) -> tuple[Assignment, list[int]]:
    """The assignment read again with its row locked (only its row: locking the batch and task rows as well
    would queue every submit and hand-out of the batch behind this one), with the batch's name, kind and
    overlap and the task's prompt: what a submit reads of them (their other fields load when read); and,
    in the same statement, the ids of the task's completions in their order."""
    attnames, assignment_columns = columns(Assignment, "a")
    lock = " FOR UPDATE OF a" if connection.features.has_select_for_update_of else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""SELECT {assignment_columns}, b.name, b.kind, b.overlap, t.prompt_id, tc.completion_id
                FROM labeling_assignment a
                JOIN labeling_batch b ON b.id = a.batch_id JOIN labeling_task t ON t.id = a.task_id
                LEFT JOIN labeling_taskcompletion tc ON tc.task_id = a.task_id
                WHERE a.id = %s ORDER BY tc.position{lock}""",
            [assignment.pk],
        )
        rows = cursor.fetchall()
    if not rows:
        raise Assignment.DoesNotExist(f"assignment {assignment.pk} is gone")
    n = len(attnames)
    locked = instance(Assignment, attnames, rows[0][:n])
    name, kind, overlap, prompt_id, _ = rows[0][n:]
    locked.batch = instance(Batch, ("id", "name", "kind", "overlap"), (locked.batch_id, name, kind, overlap))
    locked.task = instance(Task, ("id", "prompt_id"), (locked.task_id, prompt_id))
    return locked, [row[-1] for row in rows if row[-1] is not None]


def _insert_rows(table: str, columns: list[str], rows: list[list]) -> None:
    """One multi-row INSERT (nothing read back)."""
    if rows:
        values = ", ".join([f"({', '.join(['%s'] * len(columns))})"] * len(rows))
        with connection.cursor() as cursor:
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values}",
                [v for row in rows for v in row],
            )


def ranking_submit(
    *,
    assignment: Assignment,
    tiers: Any,
    ratings: Any = None,
    seconds_spent: int = 0,
    comment: str = "",
    all_unusable: bool = False,
    undo_window: bool = True,
) -> Ranking | None:
    """Store the ranking of a ranking assignment with its ratings and comparisons, all or nothing; or,
    while the undo window is open (LABELING_UNDO_SECONDS, `undo_window`), hold the validated ranking on
    the assignment and answer None: services.undo writes it when the window closes.

    Idempotent: submitting again for an assignment already submitted returns the stored ranking (None
    while it is pending).
    """
    with transaction.atomic():
        # The row lock serialises double submits of the same assignment.
        locked, completion_ids = ranking_locked(assignment)
        if locked.status == Assignment.Status.PENDING:  # a double submit inside the undo window
            return None
        if locked.status == Assignment.Status.SUBMITTED:  # read under the lock: a double submit's second
            existing = Ranking.objects.filter(assignment=locked).first()
            if existing is not None:
                return existing
        if locked.batch.kind not in (Batch.Kind.RANKING, Batch.Kind.EVALUATION):
            raise InvalidRanking(
                f"batch '{locked.batch.name}' is a {locked.batch.kind} batch, not a ranking batch."
            )
        assignment_check_still_mine(locked)  # locks the task before counting who else holds it
        clean_tiers, clean_ratings = validate_ranking(
            tiers=tiers,
            ratings=ratings,
            seconds_spent=seconds_spent,
            comment=comment,
            all_unusable=all_unusable,
            completion_ids=completion_ids,
        )
        submission = {
            "tiers": clean_tiers,
            "ratings": {str(cid): rating for cid, rating in clean_ratings.items()},  # JSON keys: strings
            "all_unusable": bool(all_unusable),
            "comment": comment or "",
            "seconds_spent": seconds_spent,
        }
        if undo_window and assignment_hold_for_undo(locked, submission):
            return None
        ranking = ranking_write(locked, completion_ids, submission)
        assignment_mark_submitted(locked)
    return ranking


def ranking_write(locked: Assignment, completion_ids: list[int], submission: dict) -> Ranking:
    """Write a validated ranking (ranking_submit's `submission`) as its Ranking, Ratings and Comparisons.
    `locked` and `completion_ids` as ranking_locked reads them. The caller marks the assignment submitted."""
    clean_tiers = submission["tiers"]
    clean_ratings = {int(cid): rating for cid, rating in submission["ratings"].items()}
    task = locked.task
    ranking = insert(  # Ranking.objects.create(...), cheaper (core.rows)
        Ranking(
            assignment=locked,
            task=task,
            labeler_id=locked.labeler_id,
            tiers=clean_tiers,
            all_unusable=submission["all_unusable"],
            comment=submission["comment"],
            seconds_spent=submission["seconds_spent"],
        )
    )
    tier_of = {cid: index for index, tier in enumerate(clean_tiers) for cid in tier}
    as_json = connection.ops.adapt_json_value
    _insert_rows(
        "labeling_rating",
        ["ranking_id", "completion_id", "tier", "likert", "flags"],
        [
            [
                ranking.pk,
                cid,
                tier_of[cid],
                clean_ratings.get(cid, {}).get("likert"),
                as_json(clean_ratings.get(cid, {}).get("flags", {}), None),
            ]
            for cid in completion_ids
        ],
    )
    created_at = connection.ops.adapt_datetimefield_value(ranking.created_at)
    _insert_rows(
        "labeling_comparison",
        ["ranking_id", "batch_id", "prompt_id", "better_id", "worse_id", "labeler_id", "created_at"],
        [
            [ranking.pk, locked.batch_id, task.prompt_id, better, worse, locked.labeler_id, created_at]
            for better, worse in comparison_pairs(clean_tiers)
        ],
    )
    return ranking
