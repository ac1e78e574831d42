"""What the data explorer lists: rankings, demonstrations and prompts, filtered and searched.

Every list is a queryset ordered by nothing yet: labeling.selectors.explorer_paging cuts it into keyset
pages by id and counts it without counting a million rows. Which rows a user may see is
`explorer_scope`; the views check the role first (labeling/views/explorer.py).

Full-text search is Postgres' (`websearch_to_tsquery`: words, "quoted phrases", -excluded, OR), over the
GIN indexes of migration 0016; SQLite (the demo) matches the words as a plain substring instead.
"""

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection
from django.db.models import Exists, Model, OuterRef, Q, QuerySet

from core.permissions import admin_or_researcher

from ..models import Batch, Completion, Demonstration, Prompt, Ranking, Rating, Task, TaskCompletion
from ..vocab import FLAGS
from .explorer_quality import batch_medians, ranking_agreement_column, too_fast_q

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

KINDS = ("rankings", "demonstrations", "prompts")
ALL_UNUSABLE = "all_unusable"  # a ranking that marked every output unusable, offered beside the flags
SEARCH_CONFIG = "english"

# The filters each list offers (ExplorerFilters' field names); q is the full-text search.
FILTERS: dict[str, tuple[str, ...]] = {
    "rankings": (
        "q",
        "batch",
        "labeler",
        "category",
        "split",
        "agreement_min",
        "agreement_max",
        "flag",
        "too_fast",
        "gold",
    ),
    "demonstrations": ("q", "batch", "labeler", "category", "split"),
    "prompts": ("q", "batch", "labeler", "category", "split", "gold"),
}


@dataclass(frozen=True)
class ExplorerFilters:
    """One list's filters, already validated (the view's form does that). Agreement is 0 to 1."""

    q: str = ""
    batch: Batch | None = None
    labeler: Any = None  # a User: the ranking's labeler, the demonstration's or prompt's author
    category: str = ""
    split: str = ""
    agreement_min: float | None = None
    agreement_max: float | None = None
    flag: str = ""  # a key of labeling.vocab.FLAGS, or ALL_UNUSABLE
    too_fast: bool | None = None
    gold: bool | None = None  # prompts: the prompt is in a gold task

    @property
    def active(self) -> bool:
        return any(getattr(self, f.name) not in ("", None) for f in fields(self))


def explorer_scope(*, user: "User | AnonymousUser") -> QuerySet[Batch] | None:
    """The batches whose labels `user` may explore. None means every batch: batch admins and researchers
    read every batch, as the batch pages (manage:batches, manage:batch) show them. Anyone else: none."""
    return None if admin_or_researcher(user) else Batch.objects.none()


def scope_batches(scope: QuerySet[Batch] | None) -> QuerySet[Batch]:
    """The batches to offer in the batch filter."""
    return (Batch.objects.all() if scope is None else scope).order_by("-pk")


def _matching(model: type[Model], column: str, q: str) -> QuerySet:
    """The ids of the rows of `model` whose `column` matches the search `q`: a subquery, so that several
    searched tables can be ORed (each a hashed subplan over its own GIN index)."""
    if connection.vendor == "postgresql":
        found = model._default_manager.alias(found=SearchVector(column, config=SEARCH_CONFIG)).filter(
            found=SearchQuery(q, config=SEARCH_CONFIG, search_type="websearch")
        )
    else:
        found = model._default_manager.filter(**{f"{column}__icontains": q})
    return found.values("pk")


def _prompt_q(f: ExplorerFilters, prefix: str) -> Q:
    """The category and split filters, on the prompt at `prefix` ("" for Prompt itself)."""
    q = Q()
    if f.category:
        q &= Q(**{f"{prefix}category": f.category})
    if f.split:
        q &= Q(**{f"{prefix}split": f.split})
    return q


def rankings(*, scope: QuerySet[Batch] | None, filters: ExplorerFilters) -> QuerySet[Ranking]:
    """Submitted rankings, each with its task's agreement (`agreement`, 0 to 1 or None)."""
    f = filters
    qs = Ranking.objects.select_related("task__prompt", "task__batch", "labeler").annotate(
        agreement=ranking_agreement_column()
    )
    if scope is not None:
        qs = qs.filter(task__batch__in=scope)
    if f.batch is not None:
        qs = qs.filter(task__batch=f.batch)
    if f.labeler is not None:
        qs = qs.filter(labeler=f.labeler)
    qs = qs.filter(_prompt_q(f, "task__prompt__"))
    if f.gold is not None:
        qs = qs.filter(task__is_gold=f.gold)
    if f.agreement_min is not None:
        qs = qs.filter(agreement__gte=f.agreement_min)
    if f.agreement_max is not None:
        qs = qs.filter(agreement__lte=f.agreement_max)
    if f.flag == ALL_UNUSABLE:
        qs = qs.filter(all_unusable=True)
    elif f.flag in FLAGS:
        qs = qs.filter(Exists(Rating.objects.filter(ranking=OuterRef("pk"), **{f"flags__{f.flag}": True})))
    if f.too_fast is not None:
        medians = batch_medians(batch_ids=None if f.batch is None else [f.batch.pk])
        fast = too_fast_q(medians)
        qs = qs.filter(fast if f.too_fast else ~fast)
    if f.q:
        # The prompt, the outputs shown in the task, or the labeler's comment: one union of ranking ids,
        # each part from its GIN index, rather than an OR the planner can only test row by row.
        shown = TaskCompletion.objects.filter(completion_id__in=_matching(Completion, "text", f.q))
        found = (
            Ranking.objects.filter(task__prompt_id__in=_matching(Prompt, "text", f.q))
            .values("pk")
            .union(Ranking.objects.filter(task_id__in=shown.values("task_id")).values("pk"))
            .union(_matching(Ranking, "comment", f.q))
        )
        qs = qs.filter(pk__in=found)
    return qs


def demonstrations(*, scope: QuerySet[Batch] | None, filters: ExplorerFilters) -> QuerySet[Demonstration]:
    """Demonstrations; in a scope, those written for an assignment of its batches."""
    f = filters
    qs = Demonstration.objects.select_related("prompt", "author", "assignment__batch")
    if scope is not None:
        qs = qs.filter(assignment__batch__in=scope)
    if f.batch is not None:
        qs = qs.filter(assignment__batch=f.batch)
    if f.labeler is not None:
        qs = qs.filter(author=f.labeler)
    qs = qs.filter(_prompt_q(f, "prompt__"))
    if f.q:
        qs = qs.filter(
            Q(pk__in=_matching(Demonstration, "text", f.q)) | Q(prompt_id__in=_matching(Prompt, "text", f.q))
        )
    return qs


def prompts(*, scope: QuerySet[Batch] | None, filters: ExplorerFilters) -> QuerySet[Prompt]:
    """Prompts; in a scope, those of its batches' tasks. Batch: the prompt is in a task of the batch;
    labeler: its author; gold: it is (or is not) in a gold task."""
    f = filters
    qs = Prompt.objects.select_related("author")
    if scope is not None:
        qs = qs.filter(Exists(Task.objects.filter(prompt=OuterRef("pk"), batch__in=scope)))
    if f.batch is not None:
        qs = qs.filter(Exists(Task.objects.filter(prompt=OuterRef("pk"), batch=f.batch)))
    if f.labeler is not None:
        qs = qs.filter(author=f.labeler)
    qs = qs.filter(_prompt_q(f, ""))
    if f.gold is not None:
        gold = Exists(Task.objects.filter(prompt=OuterRef("pk"), is_gold=True))
        qs = qs.filter(gold if f.gold else ~gold)
    if f.q:
        qs = qs.filter(pk__in=_matching(Prompt, "text", f.q))
    return qs


LISTS = {"rankings": rankings, "demonstrations": demonstrations, "prompts": prompts}
