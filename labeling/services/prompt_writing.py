"""Prompt writing as a task: a labeler writes a prompt inside a prompt-writing batch. The prompt goes
through the usual hygiene (labeling.services.prompts.prompt_create: dedup, cap, split, PII)."""

from typing import Any

from django.conf import settings
from django.db import transaction

from core.errors import ServiceError

from ..handout.leases import assignment_check_still_mine, assignment_hold_for_undo, assignment_mark_submitted
from ..models import Assignment, Batch, Prompt
from ..vocab import LABELER_SOURCES
from .demonstrations import validate_seconds
from .prompts import prompt_create


class _TriedOut(Exception):
    """Rolls back prompt_create's savepoint once it has checked a prompt (prompt_check)."""


def prompt_check(**prompt: Any) -> None:
    """Run prompt_create's checks (text, category, dedup, the origin user's cap) and keep nothing: a
    savepoint rolled back. A pending prompt is checked at submit, so its labeler hears of a duplicate at
    once, and created when the undo window closes (prompt_write)."""
    try:
        with transaction.atomic():
            prompt_create(**prompt)
            raise _TriedOut
    except _TriedOut:
        pass


def prompt_submit(
    *,
    assignment: Assignment,
    text: str,
    category: str,
    source: str,
    seconds_spent: int = 0,
    undo_window: bool = True,
) -> Prompt | None:
    """Create the prompt of a prompt-writing assignment and close the assignment, all or nothing; or,
    while the undo window is open (LABELING_UNDO_SECONDS, `undo_window`), check it, hold it on the
    assignment and answer None: services.undo writes it when the window closes.
    Raises DuplicatePrompt (with .existing) when a prompt with the same opening text exists.

    Idempotent: submitting again for an assignment already submitted returns the stored prompt (found by
    the assignment id kept in Prompt.metadata; None while it is pending).
    """
    with transaction.atomic():
        locked = (
            Assignment.objects.select_for_update(of=("self",))
            .select_related("batch", "labeler")
            .get(pk=assignment.pk)
        )
        if locked.status == Assignment.Status.PENDING:
            return None
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
        submission = {"text": text, "category": category, "source": source, "seconds_spent": seconds_spent}
        if undo_window and settings.LABELING_UNDO_SECONDS > 0:
            prompt_check(**_prompt_fields(locked, submission))
            assignment_hold_for_undo(locked, submission)
            return None
        prompt = prompt_write(locked, submission)
        assignment_mark_submitted(locked)
    return prompt


def _prompt_fields(locked: Assignment, submission: dict) -> dict[str, Any]:
    return {
        "text": submission["text"],
        "category": submission["category"],
        "source": submission["source"],
        "origin_user": locked.labeler.get_username(),
        "author": locked.labeler,
        "metadata": {
            "assignment": locked.pk,
            "batch": locked.batch_id,
            "seconds_spent": submission["seconds_spent"],
        },
    }


def prompt_write(locked: Assignment, submission: dict) -> Prompt:
    """Create the prompt of a locked prompt-writing assignment (its labeler loaded) from prompt_submit's
    `submission`. Raises what prompt_create raises. The caller marks the assignment submitted."""
    return prompt_create(**_prompt_fields(locked, submission))
