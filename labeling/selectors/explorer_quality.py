"""The explorer's quality columns in SQL, so a page can filter a million rankings without loading them.

- A task's agreement is labeling.quality.agreement's rule (for every pair of labelers who ranked the task,
  the pairs of outputs both order strictly, and the share of those they order the same way, pooled over
  the task's labeler pairs), counted here on the comparison rows: a ranking's comparisons are exactly the
  pairs it orders strictly, so two rankings compare the pairs found in both, and agree where the same
  output is the better one. NULL when the task has no compared pair (one labeler, or ties everywhere).
- "Too fast" is the quality dashboard's rule (labeling.quality.dashboard): under FAST_SHARE of the median
  time of the rankings of its batch, once that batch has FAST_MIN_RANKINGS rankings.

tests/labeling/test_explorer_quality.py checks both against the Python forms on the same rows.
"""

from collections import defaultdict
from collections.abc import Iterable
from statistics import median

from django.core.cache import cache
from django.db import connection
from django.db.models import FloatField, Q
from django.db.models.expressions import RawSQL

from ..models import Batch, Ranking
from ..quality.dashboard import FAST_MIN_RANKINGS, FAST_SHARE
from ..quality.selectors import RANKED_KINDS

# {task} is the SQL naming the task id of the outer row.
TASK_AGREEMENT_SQL = """(
  SELECT 1.0 * SUM(CASE WHEN c2.better_id = c1.better_id THEN 1 ELSE 0 END) / NULLIF(COUNT(*), 0)
  FROM labeling_ranking r1
  JOIN labeling_ranking r2 ON r2.task_id = r1.task_id AND r1.labeler_id < r2.labeler_id
  JOIN labeling_comparison c1 ON c1.ranking_id = r1.id
  JOIN labeling_comparison c2 ON c2.ranking_id = r2.id
   AND ((c2.better_id = c1.better_id AND c2.worse_id = c1.worse_id)
     OR (c2.better_id = c1.worse_id AND c2.worse_id = c1.better_id))
  WHERE r1.task_id = {task}
)"""


def task_agreement(task_column: str) -> RawSQL:
    """The agreement (0 to 1, or NULL) of the task whose id is in `task_column` of the outer query, e.g.
    "labeling_ranking"."task_id" to annotate rankings. Raw SQL: the rule is a self-join of comparisons on
    an unordered pair, which the ORM cannot say without four subqueries."""
    return RawSQL(TASK_AGREEMENT_SQL.format(task=task_column), [], output_field=FloatField())


def ranking_agreement_column() -> RawSQL:
    return task_agreement('"labeling_ranking"."task_id"')


_MEDIANS_SQL = """
SELECT t.batch_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY r.seconds_spent), COUNT(*)
FROM labeling_ranking r JOIN labeling_task t ON t.id = r.task_id
WHERE t.batch_id = ANY(%s)
GROUP BY t.batch_id
"""


MEDIANS_TTL = 300  # seconds a batch's median time is kept (Django's cache): one grouped scan per batch


def batch_medians(*, batch_ids: Iterable[int] | None = None) -> dict[int, float]:
    """{batch id: median seconds of its rankings}, for the batches with at least FAST_MIN_RANKINGS (in a
    batch with fewer, no ranking counts as too fast). None: every batch that has rankings.

    A batch of 50,000 rankings takes a scan of them to find its median, and a page lists rankings of many
    batches, so each batch's median is kept MEDIANS_TTL seconds: "too fast" may lag that much behind new
    submissions, which move a large batch's median little."""
    if batch_ids is None:
        batch_ids = Batch.objects.filter(kind__in=RANKED_KINDS).values_list("pk", flat=True)
    ids = sorted(set(batch_ids))
    kept = cache.get_many([_median_key(b) for b in ids])
    missing = [b for b in ids if _median_key(b) not in kept]
    if missing:
        fresh = _medians(missing)
        cache.set_many({_median_key(b): fresh.get(b) for b in missing}, MEDIANS_TTL)
        kept.update({_median_key(b): fresh.get(b) for b in missing})
    return {b: kept[_median_key(b)] for b in ids if kept.get(_median_key(b)) is not None}


def _median_key(batch_id: int) -> str:
    return f"explorer:batch-median:{batch_id}"


def _medians(ids: list[int]) -> dict[int, float]:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(_MEDIANS_SQL, [ids])
            return {b: float(m) for b, m, n in cursor.fetchall() if n >= FAST_MIN_RANKINGS}
    seconds: dict[int, list[int]] = defaultdict(list)  # SQLite (the demo) has no percentile
    rows = Ranking.objects.filter(task__batch_id__in=ids).values_list("task__batch_id", "seconds_spent")
    for batch, spent in rows:
        seconds[batch].append(spent)
    return {b: float(median(s)) for b, s in seconds.items() if len(s) >= FAST_MIN_RANKINGS}


def too_fast_q(medians: dict[int, float]) -> Q:
    """Filter of Ranking: the rankings under FAST_SHARE of their batch's median time."""
    q = Q(pk__in=[])
    for batch, value in medians.items():
        q |= Q(task__batch_id=batch, seconds_spent__lt=FAST_SHARE * value)
    return q


def is_too_fast(*, seconds: int, batch_id: int, medians: dict[int, float]) -> bool:
    return seconds < FAST_SHARE * medians.get(batch_id, 0.0)
