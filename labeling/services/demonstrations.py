"""Storing a demonstration: the response a labeler wrote for a prompt, with the time it took."""

from django.db import transaction

from core.errors import ServiceError

from ..handout.leases import assignment_check_still_mine, assignment_hold_for_undo, assignment_mark_submitted
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


def demonstration_submit(
    *, assignment: Assignment, text: str, seconds_spent: int, undo_window: bool = True
) -> Demonstration | None:
    """Store the demonstration of a demonstration assignment and close the assignment, all or nothing;
    or, while the undo window is open (LABELING_UNDO_SECONDS, `undo_window`), hold it on the assignment
    and answer None: services.undo writes it when the window closes.

    Idempotent: submitting again for an assignment already submitted returns the stored demonstration
    (None while it is pending).
    """
    with transaction.atomic():
        locked = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("batch", "task")
            .get(pk=assignment.pk)
        )
        if locked.status == Assignment.Status.PENDING:
            return None
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
        submission = {"text": text, "seconds_spent": seconds_spent}
        if undo_window and assignment_hold_for_undo(locked, submission):
            return None
        demonstration = demonstration_write(locked, submission)
        assignment_mark_submitted(locked)
    return demonstration


def demonstration_write(locked: Assignment, submission: dict) -> Demonstration:
    """Write a validated demonstration (demonstration_submit's `submission`) of a locked assignment (its
    task loaded). The caller marks the assignment submitted."""
    assert locked.task.prompt_id is not None  # a demonstration task always has its prompt
    return Demonstration.objects.create(
        prompt_id=locked.task.prompt_id,
        author_id=locked.labeler_id,
        assignment=locked,
        text=submission["text"],
        seconds_spent=submission["seconds_spent"],
    )
