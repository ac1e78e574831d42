"""Storing a demonstration: the response a labeler wrote for a prompt, with the time it took."""

from django.db import transaction

from core.errors import ServiceError

from ..handout.leases import assignment_check_still_mine, assignment_mark_submitted
from ..models import Assignment, Batch, Demonstration
from ..vocab import SECONDS_MAX

DEMONSTRATION_MAX_CHARS = 50_000  # the demonstration page's text box takes as many (forms.DemonstrationForm)


def validate_seconds(seconds_spent: object) -> int:
    if (
        isinstance(seconds_spent, bool)
        or not isinstance(seconds_spent, int)
        or not 0 <= seconds_spent <= SECONDS_MAX
    ):
        raise ServiceError(
            f"'seconds_spent' must be a whole number of seconds from 0 to {SECONDS_MAX}.",
            field="seconds_spent",
        )
    return seconds_spent


def demonstration_submit(*, assignment: Assignment, text: str, seconds_spent: int) -> Demonstration:
    """Store the demonstration of a demonstration assignment and close the assignment, all or nothing.

    Idempotent: submitting again for an assignment already submitted returns the stored demonstration.
    """
    with transaction.atomic():
        locked = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("batch", "task")
            .get(pk=assignment.pk)
        )
        existing = Demonstration.objects.filter(assignment=locked).first()
        if existing is not None:
            return existing
        if locked.batch.kind != Batch.Kind.DEMONSTRATION:
            raise ServiceError(
                f"batch '{locked.batch.name}' is a {locked.batch.kind} batch, not a demonstration batch."
            )
        text = (text or "").strip()
        if not text:
            raise ServiceError("the demonstration is empty: write the response you would want.", field="text")
        if len(text) > DEMONSTRATION_MAX_CHARS:
            raise ServiceError(
                f"the demonstration must be at most {DEMONSTRATION_MAX_CHARS:,} characters, got {len(text):,}.",
                field="text",
            )
        seconds_spent = validate_seconds(seconds_spent)
        assignment_check_still_mine(locked)
        assert locked.task.prompt_id is not None  # a demonstration task always has its prompt
        demonstration = Demonstration.objects.create(
            prompt_id=locked.task.prompt_id,
            author_id=locked.labeler_id,
            assignment=locked,
            text=text,
            seconds_spent=seconds_spent,
        )
        assignment_mark_submitted(locked)
    return demonstration
