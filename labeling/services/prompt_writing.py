"""Prompt writing as a task: a labeler writes a prompt inside a prompt-writing batch. The prompt goes
through the usual hygiene (labeling.services.prompts.prompt_create: dedup, cap, split, PII)."""

from django.db import transaction

from core.errors import ServiceError

from ..handout.leases import assignment_check_still_mine, assignment_mark_submitted
from ..models import Assignment, Batch, Prompt
from ..vocab import LABELER_SOURCES
from .demonstrations import validate_seconds
from .prompts import prompt_create


def prompt_submit(
    *, assignment: Assignment, text: str, category: str, source: str, seconds_spent: int = 0
) -> Prompt:
    """Create the prompt of a prompt-writing assignment and close the assignment, all or nothing.
    Raises DuplicatePrompt (with .existing) when a prompt with the same opening text exists.

    Idempotent: submitting again for an assignment already submitted returns the stored prompt (found by
    the assignment id kept in Prompt.metadata).
    """
    with transaction.atomic():
        locked = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("batch", "labeler")
            .get(pk=assignment.pk)
        )
        if locked.status == Assignment.Status.SUBMITTED:
            existing = Prompt.objects.filter(metadata__assignment=locked.pk).first()
            if existing is not None:
                return existing
        if locked.batch.kind != Batch.Kind.PROMPT_WRITING:
            raise ServiceError(
                f"batch '{locked.batch.name}' is a {locked.batch.kind} batch, not a prompt-writing batch."
            )
        if source not in LABELER_SOURCES:
            kinds = ", ".join(str(s) for s in LABELER_SOURCES)
            raise ServiceError(f"unknown prompt kind '{source}'; choose one of: {kinds}.", field="source")
        seconds_spent = validate_seconds(seconds_spent)
        assignment_check_still_mine(locked)
        prompt = prompt_create(
            text=text,
            category=category,
            source=source,
            origin_user=locked.labeler.get_username(),
            author=locked.labeler,
            metadata={"assignment": locked.pk, "batch": locked.batch_id, "seconds_spent": seconds_spent},
        )
        assignment_mark_submitted(locked)
    return prompt
