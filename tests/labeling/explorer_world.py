"""Rankings for the explorer's tests, written through the ranking service: `rank(task, user, "A>B=C>D")`."""

from string import ascii_uppercase

from django.core.cache import cache
from django.test import override_settings

from labeling.services.rankings import ranking_submit
from tests.factories import assignment_for


def letters(task) -> dict[str, int]:
    ids = task.task_completions.order_by("position").values_list("completion_id", flat=True)
    return dict(zip(ascii_uppercase, ids, strict=False))


def rank(task, labeler, order: str, *, seconds: int = 60, flags=None, comment: str = "", likert: int = 4):
    """Submit `labeler`'s ranking of `task`, tiers written as "A>B=C>D"; `flags`: {"B": ["hallucination"]}."""
    ids = letters(task)
    tiers = [[ids[x] for x in tier.split("=")] for tier in order.split(">")]
    ratings = {
        cid: {"likert": likert, "flags": {f: True for f in (flags or {}).get(letter, [])}}
        for letter, cid in ids.items()
    }
    task.batch.labelers.add(labeler)
    cache.clear()  # the explorer keeps batch median times a while (explorer_quality.MEDIANS_TTL)
    with override_settings(LABELING_UNDO_SECONDS=0):  # the label counts now, not after the undo window
        return ranking_submit(
            assignment=assignment_for(task, labeler),
            tiers=tiers,
            ratings=ratings,
            seconds_spent=seconds,
            comment=comment,
        )
