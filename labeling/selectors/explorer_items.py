"""One item of the data explorer with every label on it: a ranking task (each labeler's ranking, Likert
scores, flags, comment, time, gold answer, and the labelers' agreement on it) and a prompt (its
demonstrations and its tasks). The agreement here is computed by labeling.quality itself, on the task's
own rows."""

from dataclasses import dataclass
from string import ascii_uppercase
from typing import Any

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce
from django.shortcuts import get_object_or_404

from ..models import Batch, Demonstration, Prompt, Ranking, Task
from ..quality.agreement import LabelerPair, RankingRow, labeler_pairs, pair_agreement, pooled, tier_map
from ..quality.intervals import Estimate
from ..quality.ratings import LikertAgreement, RatingRow, likert_agreement
from ..vocab import FLAGS
from .explorer_quality import batch_medians, is_too_fast, task_agreement

ITEMS_SHOWN = 200  # demonstrations or tasks listed on a prompt's page


@dataclass(frozen=True)
class Output:
    letter: str  # A, B, C... in the task's order
    completion: Any  # Completion
    origin: str  # the model version or the external source


@dataclass(frozen=True)
class OutputRating:
    letter: str
    tier: int  # 1 = best
    likert: int | None
    flags: list[str]  # the questions answered yes


@dataclass(frozen=True)
class LabelerRanking:
    ranking: Ranking
    order: str  # "B > A = D > C"
    ratings: list[OutputRating]  # in the task's output order
    too_fast: bool
    gold: tuple[int, int] | None  # (pairs ordered like the gold answer, pairs compared), gold tasks only

    @property
    def gold_accuracy(self) -> float | None:
        return self.gold[0] / self.gold[1] if self.gold and self.gold[1] else None


@dataclass(frozen=True)
class PairView:
    labelers: tuple[str, str]
    agree: int
    compared: int
    tau: float | None

    @property
    def share(self) -> float | None:
        return self.agree / self.compared if self.compared else None


@dataclass(frozen=True)
class RankingTaskView:
    task: Task
    outputs: list[Output]
    gold_order: str | None
    rankings: list[LabelerRanking]
    agreement: Estimate
    pairs: list[PairView]
    likert: LikertAgreement
    batch_median: float | None  # seconds; None when the batch has too few rankings to judge speed


def order_text(tiers: list[list[int]], letters: dict[int, str]) -> str:
    """Tiers of completion ids as "B > A = D > C"."""
    return " > ".join(" = ".join(sorted(letters.get(int(c), "?") for c in tier)) for tier in tiers)


def explorer_task(*, scope: QuerySet[Batch] | None, task_id: int) -> Task:
    """A ranking task the scope may see, or 404."""
    tasks = Task.objects.select_related("batch", "prompt").filter(k__isnull=False)
    if scope is not None:
        tasks = tasks.filter(batch__in=scope)
    return get_object_or_404(tasks, pk=task_id)


def ranking_task_view(*, task: Task) -> RankingTaskView:
    shown = list(task.task_completions.select_related("completion__model_version").order_by("position"))
    letters = {tc.completion_id: ascii_uppercase[i] for i, tc in enumerate(shown)}
    outputs = [
        Output(
            letters[tc.completion_id],
            tc.completion,
            str(tc.completion.model_version or tc.completion.source_name),
        )
        for tc in shown
    ]
    rankings = list(
        Ranking.objects.filter(task=task).select_related("labeler").prefetch_related("ratings").order_by("pk")
    )
    medians = batch_medians(batch_ids=[task.batch_id])
    gold = tier_map(task.gold_tiers) if task.is_gold and task.gold_tiers else None
    rows = [
        RankingRow(
            r.pk,
            task.pk,
            task.batch_id,
            task.prompt.category if task.prompt else "",
            r.labeler_id,
            tier_map(r.tiers),
            r.created_at,
            r.seconds_spent,
            gold,
        )
        for r in rankings
    ]
    names = {r.labeler_id: r.labeler.get_username() for r in rankings}
    pairs = labeler_pairs(rows)
    return RankingTaskView(
        task=task,
        outputs=outputs,
        gold_order=order_text(task.gold_tiers, letters) if gold and task.gold_tiers else None,
        rankings=[_labeler_ranking(r, row, letters, medians) for r, row in zip(rankings, rows, strict=True)],
        agreement=pooled(pairs),
        pairs=[_pair_view(p, names) for p in pairs],
        likert=likert_agreement(
            RatingRow(task.pk, task.batch_id, r.labeler_id, x.completion_id, x.likert, x.flags or {})
            for r in rankings
            for x in r.ratings.all()
        ),
        batch_median=medians.get(task.batch_id),
    )


def _labeler_ranking(
    ranking: Ranking, row: RankingRow, letters: dict[int, str], medians: dict[int, float]
) -> LabelerRanking:
    ratings = sorted(ranking.ratings.all(), key=lambda x: letters.get(x.completion_id, "?"))
    return LabelerRanking(
        ranking=ranking,
        order=order_text(ranking.tiers, letters),
        ratings=[
            OutputRating(
                letters.get(x.completion_id, "?"),
                x.tier + 1,
                x.likert,
                [FLAGS.get(k, k) for k, on in sorted((x.flags or {}).items()) if on],
            )
            for x in ratings
        ],
        too_fast=is_too_fast(seconds=ranking.seconds_spent, batch_id=row.batch_id, medians=medians),
        gold=pair_agreement(row.tiers, row.gold_tiers) if row.gold_tiers else None,
    )


def _pair_view(pair: LabelerPair, names: dict[int, str]) -> PairView:
    a, b = pair.labelers
    return PairView((names[a], names[b]), pair.agree, pair.compared, pair.tau)


@dataclass(frozen=True)
class PromptView:
    prompt: Prompt
    demonstrations: list[Demonstration]
    tasks: list[Task]  # annotated: labels (rankings), agreement (ranking tasks)


def explorer_prompt(*, scope: QuerySet[Batch] | None, pk: int) -> Prompt:
    """A prompt the scope may see (one of its batches' tasks holds it), or 404."""
    prompts = Prompt.objects.select_related("author")
    if scope is not None:
        prompts = prompts.filter(tasks__batch__in=scope).distinct()
    return get_object_or_404(prompts, pk=pk)


def prompt_view(*, prompt: Prompt, scope: QuerySet[Batch] | None) -> PromptView:
    demos = Demonstration.objects.filter(prompt=prompt).select_related("author", "assignment__batch")
    tasks = Task.objects.filter(prompt=prompt).select_related("batch")
    if scope is not None:
        demos = demos.filter(assignment__batch__in=scope)
        tasks = tasks.filter(batch__in=scope)
    labels = Ranking.objects.filter(task=OuterRef("pk")).order_by().values("task").annotate(n=Count("pk"))
    tasks = tasks.annotate(
        labels=Coalesce(Subquery(labels.values("n")), 0), agreement=task_agreement('"labeling_task"."id"')
    )
    return PromptView(
        prompt, list(demos.order_by("pk")[:ITEMS_SHOWN]), list(tasks.order_by("pk")[:ITEMS_SHOWN])
    )
