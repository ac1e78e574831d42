"""Agreement on the per-output judgments: the Likert score and each yes/no metadata flag.

Two labelers who rated the same output of the same task make one pair. A flag a rating does not
mention counts as "no" (the workspace sends the flags that were ticked).
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import combinations

from ..vocab import FLAGS
from .agreement import alpha


@dataclass(frozen=True)
class RatingRow:
    task_id: int
    batch_id: int
    labeler_id: int
    completion_id: int
    likert: int | None
    flags: Mapping[str, bool]


@dataclass(frozen=True)
class LikertAgreement:
    pairs: int  # labeler pairs who both scored the same output
    exact: float | None  # share of pairs giving the same score
    within_one: float | None  # share of pairs at most one point apart
    mean_abs_diff: float | None
    alpha_ordinal: float | None  # Krippendorff's alpha, ordinal


@dataclass(frozen=True)
class FlagAgreement:
    flag: str
    label: str
    pairs: int
    agreement: float | None  # share of pairs giving the same answer
    rate: float | None  # share of ratings with the flag set
    alpha_nominal: float | None  # Krippendorff's alpha, chance-corrected (None when nobody set the flag)


def _by_output(rows: Iterable[RatingRow]) -> dict[tuple[int, int], list[RatingRow]]:
    units: dict[tuple[int, int], list[RatingRow]] = defaultdict(list)
    for row in rows:
        units[(row.task_id, row.completion_id)].append(row)
    return units


def _score(row: RatingRow) -> int:
    assert row.likert is not None  # likert_agreement keeps the scored rows only
    return row.likert


def likert_agreement(rows: Iterable[RatingRow]) -> LikertAgreement:
    units = _by_output(r for r in rows if r.likert is not None)
    diffs = [abs(_score(a) - _score(b)) for unit in units.values() for a, b in combinations(unit, 2)]
    coded = {u: {r.labeler_id: float(_score(r)) for r in unit} for u, unit in units.items()}
    if not diffs:
        return LikertAgreement(0, None, None, None, None)
    n = len(diffs)
    return LikertAgreement(
        pairs=n,
        exact=sum(d == 0 for d in diffs) / n,
        within_one=sum(d <= 1 for d in diffs) / n,
        mean_abs_diff=sum(diffs) / n,
        alpha_ordinal=alpha(coded, "ordinal"),
    )


def flag_agreement(rows: Iterable[RatingRow]) -> list[FlagAgreement]:
    """One entry per flag of labeling.vocab.FLAGS, in its order."""
    rows = list(rows)
    units = _by_output(rows)
    out = []
    for flag, label in FLAGS.items():
        same = pairs = 0
        for unit in units.values():
            for a, b in combinations(unit, 2):
                pairs += 1
                same += bool(a.flags.get(flag)) == bool(b.flags.get(flag))
        coded = {u: {r.labeler_id: float(bool(r.flags.get(flag))) for r in unit} for u, unit in units.items()}
        set_count = sum(bool(r.flags.get(flag)) for r in rows)
        out.append(
            FlagAgreement(
                flag,
                label,
                pairs,
                same / pairs if pairs else None,
                set_count / len(rows) if rows else None,
                alpha(coded, "nominal") if set_count else None,
            )
        )
    return out


def flag_rates(rows: Iterable[RatingRow]) -> dict[str, float | None]:
    """{flag: share of the ratings with it set}."""
    rows = list(rows)
    return {
        flag: (sum(bool(r.flags.get(flag)) for r in rows) / len(rows) if rows else None) for flag in FLAGS
    }
