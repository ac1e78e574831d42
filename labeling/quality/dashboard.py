"""What the quality dashboard shows: the team's agreement (rankings, Likert, flags) and each labeler's
numbers: volume, speed, agreement, gold accuracy, flag rates and suspiciously fast submissions."""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from statistics import median

from django.contrib.auth import get_user_model
from django.db.models import Count, Q

from core.roles import ROLE_LABELER

from ..models import Assignment
from .agreement import RankingAgreement, agreement_over_time, labeler_pairs, ranking_agreement
from .gold import gold_accuracy_by_labeler
from .intervals import Estimate
from .ratings import FlagAgreement, LikertAgreement, flag_agreement, flag_rates, likert_agreement
from .selectors import batch_ids, ranking_rows, rating_rows

# A ranking is suspiciously fast when it took less than this share of the median time of all the
# rankings in its batch (InstructGPT's labelers spent minutes, not seconds, per comparison set); only
# once the batch has enough rankings for its median to mean something.
FAST_SHARE = 1 / 3
FAST_MIN_RANKINGS = 5


@dataclass
class LabelerStats:
    labeler_id: int
    username: str
    submitted: int  # assignments submitted, every batch kind
    rankings: int
    median_seconds: float | None  # per ranking
    agreement: Estimate  # pairwise, against everyone else
    gold_accuracy: Estimate
    flag_rates: dict[str, float | None]
    fast: int  # rankings under FAST_SHARE of their batch's median time
    fast_share: float | None
    over_time: list[dict]  # [{"period", "value", "compared"}], weekly


@dataclass
class TeamReport:
    rankings: RankingAgreement
    likert: LikertAgreement
    flags: list[FlagAgreement]


def team_report(*, batches: Iterable | None = None) -> TeamReport:
    ratings = rating_rows(batches=batches)
    return TeamReport(
        ranking_agreement(ranking_rows(batches=batches)), likert_agreement(ratings), flag_agreement(ratings)
    )


def _labeler_ids(batches: Iterable | None) -> list[int]:
    User = get_user_model()
    worked = Assignment.objects.filter(status=Assignment.Status.SUBMITTED)
    ids = batch_ids(batches)
    if ids is not None:
        worked = worked.filter(batch_id__in=ids)
        return sorted(set(worked.values_list("labeler_id", flat=True)))
    role = set(User.objects.filter(groups__name=ROLE_LABELER).values_list("pk", flat=True))
    return sorted(role | set(worked.values_list("labeler_id", flat=True)))


def labeler_stats(
    *, batches: Iterable | None = None, labeler_ids: list[int] | None = None
) -> list[LabelerStats]:
    """Stats of the given labelers (default: every labeler, or everyone who worked on `batches`)."""
    ids = labeler_ids if labeler_ids is not None else _labeler_ids(batches)
    if not ids:
        return []
    rows = ranking_rows(batches=batches, labelers=ids)
    pairs = labeler_pairs(rows)
    agreement = ranking_agreement(rows).by_labeler
    gold = gold_accuracy_by_labeler(rows)
    # Batch medians come from every ranking of the batches these labelers worked in.
    batch_seconds: dict[int, list[int]] = defaultdict(list)
    for row in ranking_rows(batches=sorted({r.batch_id for r in rows})):
        batch_seconds[row.batch_id].append(row.seconds)
    batch_median = {b: median(s) if len(s) >= FAST_MIN_RANKINGS else 0 for b, s in batch_seconds.items()}
    wanted = set(ids)
    ratings_by: dict[int, list] = defaultdict(list)
    for rating in rating_rows(batches=batches):
        if rating.labeler_id in wanted:
            ratings_by[rating.labeler_id].append(rating)
    rankings_by: dict[int, list] = defaultdict(list)
    for row in rows:
        rankings_by[row.labeler_id].append(row)
    submitted_qs = Assignment.objects.filter(labeler_id__in=ids)
    if (scope := batch_ids(batches)) is not None:
        submitted_qs = submitted_qs.filter(batch_id__in=scope)
    submitted = dict(
        submitted_qs.values("labeler_id")
        .annotate(n=Count("pk", filter=Q(status=Assignment.Status.SUBMITTED)))
        .values_list("labeler_id", "n")
    )
    names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
    out = []
    for u in ids:
        own = rankings_by[u]
        fast = sum(1 for r in own if r.seconds < FAST_SHARE * batch_median[r.batch_id])
        out.append(
            LabelerStats(
                labeler_id=u,
                username=names.get(u, str(u)),
                submitted=submitted.get(u, 0),
                rankings=len(own),
                median_seconds=float(median(r.seconds for r in own)) if own else None,
                agreement=agreement.get(u, Estimate.empty()),
                gold_accuracy=gold.get(u, Estimate.empty()),
                flag_rates=flag_rates(ratings_by[u]),
                fast=fast,
                fast_share=fast / len(own) if own else None,
                over_time=agreement_over_time(pairs, u),
            )
        )
    return out
