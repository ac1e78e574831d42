"""{% undo_notice as pending %}: the labeler's submission whose undo window is still open, for the notice
every task page shows after a submit (templates/labeling/workspace/_undo.html)."""

import math

from django import template
from django.utils import timezone

from core.roles import is_labeler

from ..selectors.history import undo_open_for
from ..services.undo import submissions_finalise

register = template.Library()


@register.simple_tag(takes_context=True)
def undo_notice(context):
    """The newest open one, or None. The labeler's submissions whose window has closed are written here
    too: this runs on the page after each submit, so their labels count without waiting for the sweep."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not is_labeler(user):
        return None
    submissions_finalise(labeler=user)
    pending = undo_open_for(labeler=user)
    if pending is not None and pending.undo_until is not None:
        pending.seconds_left = max(1, math.ceil((pending.undo_until - timezone.now()).total_seconds()))
    return pending
