"""A labeler's own submissions: their history page, one submission read back, and the undo notice.

A submission still in its undo window is read from its assignment (Assignment.submission); one whose
window has closed from the labels written for it (labeling.services.undo)."""

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from django.db.models import QuerySet
from django.utils import timezone

from ..handout.rules import HELD
from ..models import Assignment, Batch, Demonstration, Prompt, Ranking, TaskCompletion
from ..vocab import FLAGS, Category, PromptSource

if TYPE_CHECKING:
    from django.contrib.auth.models import User

Status = Assignment.Status
LETTERS = "ABCDEFGHI"


def submissions_of(*, labeler: "User") -> QuerySet[Assignment]:
    """The labeler's submissions (pending or counted), newest first, with their batch and prompt."""
    return (
        Assignment.objects.filter(labeler=labeler, status__in=HELD)
        .select_related("batch", "task__prompt")
        .only(
            "id",
            "status",
            "finished_at",
            "undo_until",
            "batch__id",
            "batch__name",
            "batch__kind",
            "task__id",
            "task__prompt__id",
            "task__prompt__text",
        )
        .order_by("-finished_at", "-id")
    )


def undo_open_for(*, labeler: "User") -> Assignment | None:
    """The labeler's newest submission whose undo window is still open, if any: the workspace's notice."""
    return (
        Assignment.objects.filter(labeler=labeler, status=Status.PENDING, undo_until__gt=timezone.now())
        .only("id", "undo_until", "batch__id", "batch__kind")
        .select_related("batch")
        .order_by("-undo_until")
        .first()
    )


def undo_open(assignment: Assignment) -> bool:
    return (
        assignment.status == Status.PENDING
        and assignment.undo_until is not None
        and timezone.now() < assignment.undo_until
    )


@dataclass
class RatedOutput:
    letter: str
    text: str
    tier: int | None
    likert: int | None
    flags: list[str]


@dataclass
class SubmissionShown:
    """One submission as its labeler sent it, for the read-only page."""

    assignment: Assignment
    kind: str
    submitted_at: datetime | None
    undo_open: bool
    prompt_text: str = ""
    text: str = ""  # a demonstration, or the prompt written
    category: str = ""
    source: str = ""
    comment: str = ""
    all_unusable: bool = False
    tiers: list[list[RatedOutput]] = field(default_factory=list)
    unplaced: list[RatedOutput] = field(default_factory=list)
    stored: bool = True  # False: a prompt that was not kept (a duplicate written meanwhile)


def submission_of(*, labeler: "User", pk: int) -> SubmissionShown:
    """The labeler's own submission `pk`. Raises Assignment.DoesNotExist for anyone else's, and for an
    assignment not submitted."""
    assignment = Assignment.objects.select_related("batch", "task__prompt").get(
        pk=pk, labeler=labeler, status__in=HELD
    )
    kind = assignment.batch.kind
    shown = SubmissionShown(
        assignment=assignment,
        kind=kind,
        submitted_at=assignment.finished_at,
        undo_open=undo_open(assignment),
        prompt_text=assignment.task.prompt.text if assignment.task.prompt else "",
    )
    sent = assignment.submission if assignment.status == Status.PENDING else _stored(assignment, kind)
    if sent is None:
        shown.stored = False
        return shown
    if kind in (Batch.Kind.RANKING, Batch.Kind.EVALUATION):
        _fill_ranking(shown, assignment, sent)
    else:
        shown.text = sent.get("text", "")
        shown.category = _label(Category, sent.get("category", ""))
        shown.source = _label(PromptSource, sent.get("source", ""))
    return shown


def _stored(assignment: Assignment, kind: str) -> dict[str, Any] | None:
    """What was submitted, read from the labels written for it, in Assignment.submission's shape."""
    if kind in (Batch.Kind.RANKING, Batch.Kind.EVALUATION):
        ranking = Ranking.objects.filter(assignment=assignment).prefetch_related("ratings").first()
        if ranking is None:
            return None
        ratings = {
            str(r.completion_id): {"likert": r.likert, "flags": r.flags} for r in ranking.ratings.all()
        }
        return {
            "tiers": ranking.tiers,
            "ratings": ratings,
            "comment": ranking.comment,
            "all_unusable": ranking.all_unusable,
        }
    if kind == Batch.Kind.DEMONSTRATION:
        demonstration = Demonstration.objects.filter(assignment=assignment).first()
        return None if demonstration is None else {"text": demonstration.text}
    prompt = Prompt.objects.filter(metadata__assignment=assignment.pk).first()
    return (
        None
        if prompt is None
        else {"text": prompt.text, "category": prompt.category, "source": prompt.source}
    )


def _label(choices: Any, value: str) -> str:
    return str(dict(choices.choices).get(value, value))


def _fill_ranking(shown: SubmissionShown, assignment: Assignment, sent: dict[str, Any]) -> None:
    """The outputs under the letters the labeler saw them by (their display order), tier by tier."""
    texts = dict(
        TaskCompletion.objects.filter(task_id=assignment.task_id).values_list(
            "completion_id", "completion__text"
        )
    )
    order = [cid for cid in assignment.display_order or [] if cid in texts] or list(texts)
    letter = {cid: LETTERS[i] for i, cid in enumerate(order)}
    ratings = sent.get("ratings", {})
    tier_of = {cid: i for i, tier in enumerate(sent.get("tiers", [])) for cid in tier}

    def rated(cid: int) -> RatedOutput:
        r = ratings.get(str(cid)) or {}
        flags = [FLAGS.get(name, name) for name, on in (r.get("flags") or {}).items() if on]
        return RatedOutput(letter[cid], texts[cid], tier_of.get(cid), r.get("likert"), flags)

    shown.tiers = [[rated(cid) for cid in tier if cid in texts] for tier in sent.get("tiers", [])]
    shown.unplaced = [rated(cid) for cid in order if cid not in tier_of]
    shown.comment = sent.get("comment", "")
    shown.all_unusable = bool(sent.get("all_unusable"))
