"""Small builders for the quality tests: tasks with known completions and rankings given by letters."""

from core.roles import ROLE_LABELER
from labeling.models import Batch, Task
from labeling.services.rankings import ranking_submit
from tests.factories import BatchFactory, PromptFactory, UserFactory, assignment_for, ranking_task


def labelers(n: int, prefix: str = "rater") -> list:
    return [UserFactory(username=f"{prefix}{i}", roles=[ROLE_LABELER]) for i in range(1, n + 1)]


def ids(task: Task) -> list[int]:
    """The task's completion ids in position order."""
    return list(task.task_completions.values_list("completion_id", flat=True))


def tiers_of(task: Task, spec: str) -> list[list[int]]:
    """'a b cd' -> [[id of a], [id of b], [ids of c, d]]: letters are positions, spaces separate tiers."""
    by_letter = dict(zip("abcdefghi", ids(task), strict=False))
    return [[by_letter[letter] for letter in tier] for tier in spec.split()]


def rank(
    task: Task,
    labeler,
    spec: str,
    *,
    likert: dict | None = None,
    flags: dict | None = None,
    seconds: int = 60,
):
    """Submit `labeler`'s ranking of `task` ('a b cd'); likert/flags keyed by letter (a ranking needs a
    Likert score for every output: those not given get a middling 4)."""
    by_letter = dict(zip("abcdefghi", ids(task), strict=False))
    ratings = {}
    for letter, cid in by_letter.items():
        ratings[cid] = {"likert": (likert or {}).get(letter, 4), "flags": (flags or {}).get(letter, {})}
    return ranking_submit(
        assignment=assignment_for(task, labeler),
        tiers=tiers_of(task, spec),
        ratings=ratings,
        seconds_spent=seconds,
    )


def task_in(
    batch: Batch | None = None, k: int = 4, category: str = "generation", split: str | None = None
) -> Task:
    prompt = PromptFactory(category=category, **({"split": split} if split else {}))
    return ranking_task(batch or BatchFactory(), k=k, prompt=prompt)
