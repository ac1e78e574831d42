"""Storing a ranking: the submission, its per-completion ratings and its comparison pairs, in one
transaction. Ties (completions in the same tier) imply no comparison."""

from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Any

from django.db import connection, transaction

from ..errors import InvalidRanking
from ..models import Assignment, Batch, Ranking, Task
from ..rows import columns, insert, instance
from ..storable import unstorable
from ..vocab import FLAGS, LIKERT_MAX, LIKERT_MIN, SECONDS_MAX

COMMENT_MAX_CHARS = 5_000  # the ranking page's comment box takes as many (labeling.forms.RankingForm)


def comparison_pairs(tiers: list[list[int]]) -> list[tuple[int, int]]:
    """(better, worse) for every two completions in different tiers; tiers run best to worst."""
    pairs = []
    for upper, lower in combinations(range(len(tiers)), 2):
        pairs.extend((better, worse) for better in tiers[upper] for worse in tiers[lower])
    return pairs


def validate_tiers(tiers: Any, task_completion_ids: Iterable[int]) -> list[list[int]]:
    """Every completion of the task exactly once, in non-empty tiers. Returns the clean tiers."""
    expected = set(task_completion_ids)
    if not isinstance(tiers, list) or not tiers:
        raise InvalidRanking(
            "'tiers' must be a non-empty list of tiers (lists of completion ids).", field="tiers"
        )
    seen: set[int] = set()
    clean: list[list[int]] = []
    for index, tier in enumerate(tiers):
        if not isinstance(tier, list) or not tier:
            raise InvalidRanking(
                f"tier {index + 1} is empty: every tier needs at least one completion.", field="tiers"
            )
        for cid in tier:
            if isinstance(cid, bool) or not isinstance(cid, int):
                raise InvalidRanking(f"tier {index + 1}: {cid!r} is not a completion id.", field="tiers")
            if cid not in expected:
                raise InvalidRanking(
                    f"completion {cid} is not one of this task's completions.", field="tiers"
                )
            if cid in seen:
                raise InvalidRanking(
                    f"completion {cid} appears more than once in the ranking.", field="tiers"
                )
            seen.add(cid)
        clean.append(list(tier))
    missing = sorted(expected - seen)
    if missing:
        listed = ", ".join(map(str, missing))
        raise InvalidRanking(f"the ranking must place every completion; missing: {listed}.", field="tiers")
    return clean


def validate_ratings(ratings: Any, task_completion_ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    """{completion id: {"likert": 1..7 or None, "flags": {flag: bool}}} for completions of the task."""
    expected = set(task_completion_ids)
    if ratings is None:
        return {}
    if not isinstance(ratings, Mapping):
        raise InvalidRanking("'ratings' must map completion ids to {likert, flags}.", field="ratings")
    clean: dict[int, dict[str, Any]] = {}
    for key, rating in ratings.items():
        try:
            cid = int(key)
        except (TypeError, ValueError):
            raise InvalidRanking(f"ratings: {key!r} is not a completion id.", field="ratings") from None
        if cid not in expected:
            raise InvalidRanking(
                f"ratings: completion {cid} is not one of this task's completions.", field="ratings"
            )
        if not isinstance(rating, Mapping):
            raise InvalidRanking(
                f"ratings[{cid}] must be an object with 'likert' and 'flags'.", field="ratings"
            )
        likert = rating.get("likert")
        if likert is not None and (
            isinstance(likert, bool) or not isinstance(likert, int) or not LIKERT_MIN <= likert <= LIKERT_MAX
        ):
            raise InvalidRanking(
                f"ratings[{cid}].likert must be an integer from {LIKERT_MIN} to {LIKERT_MAX}, got {likert!r}.",
                field="likert",
            )
        flags = rating.get("flags") or {}
        if not isinstance(flags, Mapping):
            raise InvalidRanking(f"ratings[{cid}].flags must be an object of yes/no flags.", field="flags")
        unknown = sorted(set(flags) - set(FLAGS))
        if unknown:
            raise InvalidRanking(
                f"ratings[{cid}].flags: unknown flag(s) {', '.join(unknown)}.", field="flags"
            )
        if any(not isinstance(v, bool) for v in flags.values()):
            raise InvalidRanking(f"ratings[{cid}].flags values must be true or false.", field="flags")
        clean[cid] = {"likert": likert, "flags": dict(flags)}
    return clean


def validate_extras(*, seconds_spent: Any, comment: Any, all_unusable: Any) -> None:
    """Seconds spent (as many as the column holds), a comment of storable text up to COMMENT_MAX_CHARS (or
    None), a yes or no."""
    if (
        isinstance(seconds_spent, bool)
        or not isinstance(seconds_spent, int)
        or not 0 <= seconds_spent <= SECONDS_MAX
    ):
        raise InvalidRanking(
            f"'seconds_spent' must be a whole number of seconds from 0 to {SECONDS_MAX}.",
            field="seconds_spent",
        )
    if comment is not None and not isinstance(comment, str):
        raise InvalidRanking(f"'comment' must be text, got {type(comment).__name__}.", field="comment")
    if comment and len(comment) > COMMENT_MAX_CHARS:
        raise InvalidRanking(
            f"'comment' must be at most {COMMENT_MAX_CHARS:,} characters, got {len(comment):,}.",
            field="comment",
        )
    if problem := unstorable(comment or ""):
        raise InvalidRanking(f"'comment' {problem}.", field="comment")
    if not isinstance(all_unusable, bool):
        raise InvalidRanking("'all_unusable' must be true or false.", field="all_unusable")


# A submit's statements, in SQL: the ORM's versions (select_for_update().select_related().get(), the
# completions' values_list, create, two bulk_creates, save) cost 2.8 ms of CPU per submit, these 0.5 ms.


def _locked_for_submit(assignment: Assignment) -> tuple[Assignment, list[int]]:
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
) -> Ranking:
    """Store the ranking of a ranking assignment with its ratings and comparisons, all or nothing.

    Idempotent: submitting again for an assignment already submitted returns the stored ranking.
    """
    with transaction.atomic():
        # The row lock serialises double submits of the same assignment.
        locked, completion_ids = _locked_for_submit(assignment)
        if locked.status == Assignment.Status.SUBMITTED:  # read under the lock: a double submit's second
            existing = Ranking.objects.filter(assignment=locked).first()
            if existing is not None:
                return existing
        if locked.batch.kind not in (Batch.Kind.RANKING, Batch.Kind.EVALUATION):
            raise InvalidRanking(
                f"batch '{locked.batch.name}' is a {locked.batch.kind} batch, not a ranking batch."
            )
        from .assignment import (  # assignment.py imports this module
            assignment_check_still_mine,
            assignment_mark_submitted,
        )

        assignment_check_still_mine(locked)  # locks the task before counting who else holds it
        task = locked.task
        clean_tiers = validate_tiers(tiers, completion_ids)
        clean_ratings = validate_ratings(ratings, completion_ids)
        validate_extras(seconds_spent=seconds_spent, comment=comment, all_unusable=all_unusable)

        ranking = insert(  # Ranking.objects.create(...), cheaper (labeling.rows)
            Ranking(
                assignment=locked,
                task=task,
                labeler_id=locked.labeler_id,
                tiers=clean_tiers,
                all_unusable=all_unusable,
                comment=comment or "",
                seconds_spent=seconds_spent,
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
        assignment_mark_submitted(locked)
    return ranking
