from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from core.roles import is_labeler

from ..selectors.home import batches_open_for, labeler_counts
from .undo import undo_notice


@login_required
def home(request):
    """The labeler home (open batches, what is left, my counts); other roles see links to their areas."""
    context = {}
    if is_labeler(request.user):
        context = {
            "pending_undo": undo_notice(request.user),  # first: writes the closed windows' labels
            "summaries": batches_open_for(user=request.user),
            "counts": labeler_counts(user=request.user),
        }
    return render(request, "labeling/home.html", context)
