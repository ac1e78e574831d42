"""The ranking rules, in one module that the ranking page (labeling.forms.RankingForm) and the API's
submit (through labeling.services.rankings.ranking_submit) both use: every completion placed once in
non-empty tiers, ratings of the task's completions only (Likert 1-7, known yes/no flags), a comment of
storable text, and which pairs a ranking implies (ties imply none).

The Likert rule, decided once: InstructGPT's labelers give every output a 1-7 quality score
(INSTRUCTGPT.md), so a ranking needs a Likert score for every output unless it marks all outputs unusable
(likert_missing). No batch setting asks otherwise (a Batch has none for it); the one validator,
validate_ranking, applies it to the page's and the API's submissions alike.
"""

from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Any

from core.errors import InvalidRanking
from core.storable import unstorable

from .vocab import FLAGS, LIKERT_MAX, LIKERT_MIN, SECONDS_MAX

COMMENT_MAX_CHARS = 5_000  # the ranking page's comment box takes as many (labeling.forms.RankingForm)


def comparison_pairs(tiers: list[list[int]]) -> list[tuple[int, int]]:
    """(better, worse) for every two completions in different tiers; tiers run best to worst."""
    pairs: list[tuple[int, int]] = []
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


def likert_missing(
    *, ratings: Mapping[int, Any], completion_ids: Iterable[int], all_unusable: bool
) -> list[int]:
    """The completions still without a Likert score, in order; none when the ranking marks all outputs
    unusable (there is nothing to score then)."""
    if all_unusable:
        return []
    return [cid for cid in completion_ids if (ratings.get(cid) or {}).get("likert") is None]


def validate_ranking(
    *,
    tiers: Any,
    ratings: Any,
    seconds_spent: Any,
    comment: Any,
    all_unusable: Any,
    completion_ids: list[int],
) -> tuple[list[list[int]], dict[int, dict[str, Any]]]:
    """Every rule of a ranking submission, for the page and the API alike: the clean tiers and ratings,
    or InvalidRanking naming the field."""
    clean_tiers = validate_tiers(tiers, completion_ids)
    clean_ratings = validate_ratings(ratings, completion_ids)
    validate_extras(seconds_spent=seconds_spent, comment=comment, all_unusable=all_unusable)
    missing = likert_missing(ratings=clean_ratings, completion_ids=completion_ids, all_unusable=all_unusable)
    if missing:
        raise InvalidRanking(
            f"give every output a Likert score from {LIKERT_MIN} to {LIKERT_MAX} (or mark all outputs "
            f"unusable); missing for completion(s) {', '.join(map(str, missing))}.",
            field="likert",
        )
    return clean_tiers, clean_ratings
