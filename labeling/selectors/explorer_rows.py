"""What a page of the rankings list shows beside each ranking: its order in letters, the flags it set, and
whether it was too fast. Read for the page's rows only (a few small queries, whatever the table's size)."""

from collections import defaultdict
from dataclasses import dataclass
from string import ascii_uppercase

from ..models import Ranking, Rating, TaskCompletion
from ..vocab import FLAGS
from .explorer_items import order_text
from .explorer_quality import batch_medians, is_too_fast


@dataclass(frozen=True)
class RankingListRow:
    ranking: Ranking  # with `agreement` annotated (labeling.selectors.explorer.rankings)
    order: str
    flags: list[str]  # "B: Hallucination (makes up information)", ...
    too_fast: bool


def ranking_list_rows(rankings: list[Ranking]) -> list[RankingListRow]:
    task_ids = {r.task_id for r in rankings}
    letters: dict[int, dict[int, str]] = defaultdict(dict)
    for task_id, completion_id in (
        TaskCompletion.objects.filter(task_id__in=task_ids)
        .order_by("task_id", "position")
        .values_list("task_id", "completion_id")
    ):
        letters[task_id][completion_id] = ascii_uppercase[len(letters[task_id])]
    task_of = {r.pk: r.task_id for r in rankings}
    flags: dict[int, list[str]] = defaultdict(list)
    rated = Rating.objects.filter(ranking_id__in=task_of).exclude(flags={})
    for ranking_id, completion_id, set_flags in rated.values_list("ranking_id", "completion_id", "flags"):
        letter = letters[task_of[ranking_id]].get(completion_id, "?")
        flags[ranking_id].extend(f"{letter}: {FLAGS.get(k, k)}" for k, on in (set_flags or {}).items() if on)
    medians = batch_medians(batch_ids={r.task.batch_id for r in rankings})
    return [
        RankingListRow(
            r,
            order_text(r.tiers, letters[r.task_id]),
            sorted(flags[r.pk]),
            is_too_fast(seconds=r.seconds_spent, batch_id=r.task.batch_id, medians=medians),
        )
        for r in rankings
    ]
