"""Which objects a workspace user may see: a labeler only their own assignments on their batches, and the
prompts they wrote or were handed (the labelers-only rule itself is core.permissions.labeler_required)."""

from typing import TYPE_CHECKING

from django.core.exceptions import PermissionDenied
from django.http import HttpRequest
from django.shortcuts import get_object_or_404

from core.permissions import signed_in_user
from core.roles import is_batch_admin, is_labeler, is_researcher

from ..handout.rules import user_may_work_on
from ..models import Assignment, Prompt

if TYPE_CHECKING:
    pass


def my_assignment(request: HttpRequest, pk: int) -> Assignment:
    """The requesting labeler's own assignment: someone else's is a 404, a batch they left is a 403."""
    labeler = signed_in_user(request)  # behind labeler_required
    assignment = get_object_or_404(
        Assignment.objects.select_related("batch", "task", "task__prompt"), pk=pk, labeler=labeler
    )
    if not user_may_work_on(user=labeler, batch=assignment.batch):
        raise PermissionDenied("You are no longer a labeler of this batch.")
    return assignment


def may_see_prompt(request: HttpRequest, prompt: Prompt) -> bool:
    """Batch admins and researchers see every prompt; a labeler the prompts they wrote and those of tasks
    handed to them. Never other labelers' prompts, the prompts of batches they are not on, or the prompt a
    refused duplicate of theirs collided with (they learn only that it exists: DuplicatePrompt)."""
    user = signed_in_user(request)  # behind login_required (workspace.prompt_detail)
    if is_batch_admin(user) or is_researcher(user):
        return True
    if not is_labeler(user):
        return False
    return (
        prompt.author_id == user.pk or Assignment.objects.filter(labeler=user, task__prompt=prompt).exists()
    )
