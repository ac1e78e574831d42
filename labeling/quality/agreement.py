"""Inter-annotator agreement on rankings.

Pairwise agreement is counted as InstructGPT counts it (section 3.4 and appendix B.4: 72.6 +/- 1.5%):
for two labelers who ranked the same task, the share of completion pairs that both order strictly
(neither ties them) and that both order the same way. Pairs either labeler tied are left out.
Figures over many tasks pool the pairs (agreeing pairs / compared pairs), with a 95% interval from the
bootstrap over tasks.

Kendall's tau (tau-b, scipy) is computed per pair of labelers per task and averaged; Krippendorff's alpha
(ordinal, the `krippendorff` package) treats each (task, completion) as a unit, each labeler as a coder
and the completion's mid-rank within the task as the value.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import combinations
from typing import Literal, TypeVar

import krippendorff
import numpy as np
from scipy import stats

from .intervals import Estimate, pooled_ratio

Unit = TypeVar("Unit")  # what alpha's units are keyed by: (task, completion) here


def tier_map(tiers: Sequence[Sequence[int]]) -> dict[int, int]:
    """{completion id: tier index}, tier 0 the best."""
    return {int(cid): index for index, tier in enumerate(tiers) for cid in tier}


def pair_agreement(a: Mapping[int, int], b: Mapping[int, int]) -> tuple[int, int]:
    """(agreeing pairs, compared pairs) of two rankings given as {completion: tier}; a pair that either
    ranking ties is not compared."""
    agree = compared = 0
    for x, y in combinations(sorted(a.keys() & b.keys()), 2):
        da, db = a[x] - a[y], b[x] - b[y]
        if da and db:
            compared += 1
            agree += (da > 0) == (db > 0)
    return agree, compared


def kendall_tau(a: Mapping[int, int], b: Mapping[int, int]) -> float | None:
    """Kendall's tau-b of two rankings over their common completions; None when undefined (a ranking
    that ties everything, or fewer than two completions)."""
    common = sorted(a.keys() & b.keys())
    if len(common) < 2:
        return None
    tau = stats.kendalltau([a[c] for c in common], [b[c] for c in common]).statistic
    return None if np.isnan(tau) else float(tau)


@dataclass(frozen=True)
class RankingRow:
    """One submitted ranking, as the agreement figures need it."""

    ranking_id: int
    task_id: int
    batch_id: int
    category: str
    labeler_id: int
    tiers: dict[int, int]  # {completion id: tier}
    created_at: datetime
    seconds: int = 0
    gold_tiers: dict[int, int] | None = None  # the reference ranking, for gold tasks


@dataclass(frozen=True)
class LabelerPair:
    """Two labelers' rankings of the same task, compared."""

    task_id: int
    batch_id: int
    category: str
    labelers: tuple[int, int]
    agree: int
    compared: int
    tau: float | None
    when: dict[int, datetime]  # labeler -> when that labeler submitted


def labeler_pairs(rows: Iterable[RankingRow]) -> list[LabelerPair]:
    """Every pair of labelers who ranked the same task."""
    by_task: dict[int, list[RankingRow]] = defaultdict(list)
    for row in rows:
        by_task[row.task_id].append(row)
    pairs = []
    for task_rows in by_task.values():
        task_rows.sort(key=lambda r: r.labeler_id)
        for r1, r2 in combinations(task_rows, 2):
            agree, compared = pair_agreement(r1.tiers, r2.tiers)
            pairs.append(
                LabelerPair(
                    r1.task_id,
                    r1.batch_id,
                    r1.category,
                    (r1.labeler_id, r2.labeler_id),
                    agree,
                    compared,
                    kendall_tau(r1.tiers, r2.tiers),
                    {r1.labeler_id: r1.created_at, r2.labeler_id: r2.created_at},
                )
            )
    return pairs


def pooled(pairs: Iterable[LabelerPair]) -> Estimate:
    """Agreeing / compared pairs pooled over the given labeler pairs, interval by tasks."""
    agree: dict[int, int] = defaultdict(int)
    compared: dict[int, int] = defaultdict(int)
    for p in pairs:
        agree[p.task_id] += p.agree
        compared[p.task_id] += p.compared
    tasks = list(compared)
    return pooled_ratio([agree[t] for t in tasks], [compared[t] for t in tasks])


def mean_tau(pairs: Iterable[LabelerPair]) -> Estimate:
    """Mean Kendall's tau over labeler pairs (where defined), interval by tasks."""
    total: dict[int, float] = defaultdict(float)
    count: dict[int, int] = defaultdict(int)
    for p in pairs:
        if p.tau is not None:
            total[p.task_id] += p.tau
            count[p.task_id] += 1
    tasks = list(count)
    return pooled_ratio([total[t] for t in tasks], [count[t] for t in tasks])


def _mid_ranks(tiers: Mapping[int, int]) -> dict[int, float]:
    ids = sorted(tiers)
    ranks = stats.rankdata([tiers[c] for c in ids], method="average")
    return dict(zip(ids, ranks.tolist(), strict=True))


def alpha(units: Mapping[Unit, Mapping[int, float]], level: Literal["nominal", "ordinal"]) -> float | None:
    """Krippendorff's alpha of {unit: {coder: value}}, over units with at least two values; None when
    undefined (fewer than two such units, or a single value in all the data)."""
    units = {u: v for u, v in units.items() if len(v) >= 2}
    coders = sorted({c for values in units.values() for c in values})
    if len(units) < 2 or len(coders) < 2:
        return None
    column = {c: i for i, c in enumerate(coders)}
    data = np.full((len(coders), len(units)), np.nan)
    for j, values in enumerate(units.values()):
        for coder, value in values.items():
            data[column[coder], j] = value
    try:
        value = krippendorff.alpha(reliability_data=data, level_of_measurement=level)
    except (ValueError, ZeroDivisionError):  # one value in the whole domain: no disagreement is possible
        return None
    return None if np.isnan(value) else float(value)


def ranking_alpha(rows: Iterable[RankingRow]) -> float | None:
    """Ordinal Krippendorff's alpha over (task, completion) units, values the mid-ranks in the task."""
    units: dict[tuple[int, int], dict[int, float]] = defaultdict(dict)
    for row in rows:
        for cid, rank in _mid_ranks(row.tiers).items():
            units[(row.task_id, cid)][row.labeler_id] = rank
    return alpha(units, "ordinal")


@dataclass
class RankingAgreement:
    """The ranking agreement of a set of rankings, overall and by batch, category and labeler."""

    overall: Estimate
    kendall_tau: Estimate
    alpha_ordinal: float | None
    by_batch: dict[int, Estimate] = field(default_factory=dict)
    by_category: dict[str, Estimate] = field(default_factory=dict)
    by_labeler: dict[int, Estimate] = field(default_factory=dict)
    rankings: int = 0
    tasks_with_several: int = 0


def ranking_agreement(rows: Sequence[RankingRow]) -> RankingAgreement:
    pairs = labeler_pairs(rows)
    by_batch: dict[int, list[LabelerPair]] = defaultdict(list)
    by_category: dict[str, list[LabelerPair]] = defaultdict(list)
    by_labeler: dict[int, list[LabelerPair]] = defaultdict(list)
    for p in pairs:
        by_batch[p.batch_id].append(p)
        by_category[p.category].append(p)
        for labeler in p.labelers:
            by_labeler[labeler].append(p)
    return RankingAgreement(
        overall=pooled(pairs),
        kendall_tau=mean_tau(pairs),
        alpha_ordinal=ranking_alpha(rows),
        by_batch={b: pooled(ps) for b, ps in sorted(by_batch.items())},
        by_category={c: pooled(ps) for c, ps in sorted(by_category.items())},
        by_labeler={u: pooled(ps) for u, ps in sorted(by_labeler.items())},
        rankings=len(rows),
        tasks_with_several=len({p.task_id for p in pairs}),
    )


def agreement_over_time(pairs: Iterable[LabelerPair], labeler_id: int, *, period: str = "week") -> list[dict]:
    """One labeler's agreement with the others per week (or day) of the labeler's own submission:
    [{"period": "2024-05-06", "value": 0.71, "compared": 120}, ...], oldest first."""
    agree: dict[str, int] = defaultdict(int)
    compared: dict[str, int] = defaultdict(int)
    for p in pairs:
        if labeler_id not in p.labelers or not p.compared:
            continue
        when = p.when[labeler_id].date()
        if period == "week":
            when = when.fromordinal(when.toordinal() - when.weekday())
        key = when.isoformat()
        agree[key] += p.agree
        compared[key] += p.compared
    return [{"period": k, "value": agree[k] / compared[k], "compared": compared[k]} for k in sorted(compared)]
