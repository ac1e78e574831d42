"""The quality dashboard: the team's agreement and every labeler's numbers for batch admins and
researchers; a labeler sees only their own."""

from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render

from core.permissions import may_see_all, require_see_labeler, signed_in_user
from core.roles import is_labeler

from ..models import Batch
from ..quality.charts import agreement_over_time_series
from ..quality.dashboard import LabelerStats, labeler_stats, team_report
from ..quality.display import flag_heading, num, pct
from ..quality.ratings import FlagAgreement
from ..quality.selectors import RANKED_KINDS
from ..vocab import FLAGS, Category

MAIN_FLAGS = ("hallucination", "fails_instruction", "inappropriate")


def _batch_filter(request: HttpRequest) -> Batch | None:
    """The batch named by ?batch=. A labeler may name only a batch they are or were on: another one is
    a 404, as if it did not exist (the page's heading would show its name)."""
    value = request.GET.get("batch", "")
    if not value.isdigit():
        return None
    batches = Batch.objects.all()
    if not may_see_all(request.user):
        user = request.user
        batches = batches.filter(Q(labelers=user) | Q(groups__user=user) | Q(assignments__labeler=user))
    return get_object_or_404(batches.distinct(), pk=int(value))


def _rows(stats: Iterable[LabelerStats]) -> list[dict]:
    return [
        {
            "stats": s,
            "fast_share": pct(s.fast_share, 0),
            "flags": [pct(s.flag_rates.get(f)) for f in MAIN_FLAGS],
        }
        for s in stats
    ]


def _flag_rows(flags: Iterable[FlagAgreement]) -> list[dict]:
    return [
        {
            "label": f.label,
            "rate": pct(f.rate),
            "agreement": pct(f.agreement),
            "alpha": num(f.alpha_nominal),
            "pairs": f.pairs,
        }
        for f in flags
    ]


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    batch = _batch_filter(request)
    batches = [batch] if batch else None
    if not may_see_all(request.user):
        if not is_labeler(request.user):
            raise PermissionDenied("The quality dashboard is for labelers, batch admins and researchers.")
        return labeler_detail(request, signed_in_user(request).pk)
    report = team_report(batches=batches)
    stats = labeler_stats(batches=batches)
    names = dict(Batch.objects.filter(pk__in=report.rankings.by_batch).values_list("pk", "name"))
    return render(
        request,
        "quality/dashboard.html",
        {
            "report": report,
            "by_batch": [(names.get(b, b), est) for b, est in report.rankings.by_batch.items()],
            "by_category": [
                (Category(c).label if c in Category.values else c, est)
                for c, est in report.rankings.by_category.items()
            ],
            "rows": _rows(stats),
            "flag_rows": _flag_rows(report.flags),
            "likert": {
                "exact": pct(report.likert.exact),
                "within_one": pct(report.likert.within_one),
                "diff": num(report.likert.mean_abs_diff, 2),
                "alpha": num(report.likert.alpha_ordinal),
            },
            "alpha": num(report.rankings.alpha_ordinal),
            "main_flags": [flag_heading(f) for f in MAIN_FLAGS],
            "chart": agreement_over_time_series(stats),
            "batch": batch,
            "batches": Batch.objects.filter(kind__in=RANKED_KINDS).order_by("-pk")[:200],
        },
    )


@login_required
def labeler_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    require_see_labeler(request.user, user_id)
    labeler = get_object_or_404(get_user_model(), pk=user_id)
    batch = _batch_filter(request)
    [stats] = labeler_stats(batches=[batch] if batch else None, labeler_ids=[labeler.pk])
    return render(
        request,
        "quality/labeler.html",
        {
            "labeler": labeler,
            "stats": stats,
            "own": labeler.pk == request.user.pk,
            "flags": [(label, pct(stats.flag_rates.get(key))) for key, label in FLAGS.items()],
            "over_time": [{**p, "value": pct(p["value"])} for p in stats.over_time],
            "chart": agreement_over_time_series([stats]),
            "batch": batch,
            "see_all": may_see_all(request.user),
        },
    )
