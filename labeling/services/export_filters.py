"""Which labels a dataset snapshot takes: its filters, checked and typed (`filters_clean`, a ServiceError naming
the filter otherwise), then turned into what the export queries read (`query_filters`, which narrows the
labelers and tasks by agreement). labeling/services/exports.py writes the snapshot."""

from collections.abc import Mapping
from datetime import UTC, date, datetime, time

from django.contrib.auth import get_user_model
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from core.errors import ServiceError
from core.storable import unstorable

from ..models import Batch, SnapshotKind
from ..quality import selectors as quality
from ..selectors import exports as rows
from ..vocab import Category, Split

RANKING_KINDS = (SnapshotKind.RM_PAIRS, SnapshotKind.RM_RANKINGS)
AGREEMENT_KINDS = (
    *RANKING_KINDS,
    SnapshotKind.RATINGS,
)  # kinds made of rankings: the agreement filters apply
RANKING_MODES = ("all", "consensus")
FILTER_KEYS = (
    "batches",
    "split",
    "category",
    "created_after",
    "created_before",
    "labelers",
    "rankings",
    "min_agreement",
    "min_labeler_agreement",
    "include_pii",
)


def _as_list(value: object, key: str) -> list:
    if value is None or value == "":
        return []
    if isinstance(value, str | int):
        return [value]
    if isinstance(value, list | tuple | set):
        return list(value)
    raise ServiceError(f"'{key}' must be a value or a list of values.", field=key)


def _choices(value: object, key: str, allowed: list[str]) -> list[str]:
    values = _as_list(value, key)
    unknown = sorted({str(v) for v in values} - set(allowed))
    if unknown:
        raise ServiceError(
            f"unknown {key} {', '.join(unknown)}; choose from: {', '.join(allowed)}.", field=key
        )
    return sorted(set(values))


def _ids(value: object, key: str) -> list[int]:
    try:
        return sorted({int(v) for v in _as_list(value, key) if not isinstance(v, bool)})
    except (TypeError, ValueError):
        raise ServiceError(f"'{key}' must list ids (whole numbers).", field=key) from None


def _moment(value: object, key: str) -> datetime:
    """A date (midnight UTC) or an ISO datetime (UTC when no offset is given), as UTC: Postgres refuses
    offsets past 15:59 that Python reads (-21:39), and moments in one offset compare as text."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, time.min)
    else:
        text = str(value).strip()
        try:
            parsed = parse_datetime(text) or (
                datetime.combine(day, time.min) if (day := parse_date(text)) else None
            )
        except ValueError:  # well formed, but no such day or time (2024-02-30)
            parsed = None
        if parsed is None:
            raise ServiceError(
                f"'{key}' must be a date (2024-05-31) or an ISO datetime, got {value!r}.", field=key
            )
        moment = parsed
    moment = moment if timezone.is_aware(moment) else timezone.make_aware(moment, UTC)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise ServiceError(f"'{key}' is out of range, got {value!r}.", field=key) from None


def _labelers(value: object) -> list[int]:
    User = get_user_model()
    ids, names = set(), set()
    for item in _as_list(value, "labelers"):
        if isinstance(item, int) or (isinstance(item, str) and item.isdigit()):
            ids.add(int(item))
        else:
            names.add(str(item))
    found = dict(User.objects.filter(username__in=names).values_list(User.USERNAME_FIELD, "pk"))
    missing = sorted(names - set(found)) + sorted(
        str(i) for i in ids - set(User.objects.filter(pk__in=ids).values_list("pk", flat=True))
    )
    if missing:
        raise ServiceError(f"unknown labeler(s): {', '.join(missing)}.", field="labelers")
    return sorted(ids | set(found.values()))


def filters_clean(*, kind: str, filters: Mapping | None) -> dict:
    """Check the filters and return them in canonical form (what the snapshot records)."""
    filters = dict(filters or {})
    if problem := unstorable(filters):  # before any of it reaches a query
        raise ServiceError(f"the filters: {problem}.", field="filters")
    unknown = sorted(set(filters) - set(FILTER_KEYS))
    if unknown:
        raise ServiceError(
            f"unknown filter '{unknown[0]}'; known filters: {', '.join(FILTER_KEYS)}.", field=unknown[0]
        )
    clean: dict = {}
    if batches := _ids(filters.get("batches"), "batches"):
        missing = sorted(
            set(batches) - set(Batch.objects.filter(pk__in=batches).values_list("pk", flat=True))
        )
        if missing:
            raise ServiceError(f"batch(es) {', '.join(map(str, missing))} do not exist.", field="batches")
        clean["batches"] = batches
    if split := _choices(filters.get("split"), "split", Split.values):
        clean["split"] = split
    if category := _choices(filters.get("category"), "category", Category.values):
        clean["category"] = category
    for key in ("created_after", "created_before"):
        if filters.get(key) not in (None, ""):
            clean[key] = _moment(filters[key], key).isoformat()
    if (
        "created_after" in clean
        and "created_before" in clean
        and clean["created_after"] >= clean["created_before"]
    ):
        raise ServiceError("'created_after' must be earlier than 'created_before'.", field="created_before")
    if labelers := _labelers(filters.get("labelers")):
        clean["labelers"] = labelers
    mode = filters.get("rankings") or "all"
    if kind in RANKING_KINDS:
        if mode not in RANKING_MODES:
            raise ServiceError(f"'rankings' must be 'all' or 'consensus', got {mode!r}.", field="rankings")
        clean["rankings"] = mode
    elif mode != "all":
        raise ServiceError("'rankings' applies to rm_pairs and rm_rankings only.", field="rankings")
    if filters.get("min_agreement") not in (None, ""):
        try:
            value = float(filters["min_agreement"])
        except (TypeError, ValueError):
            value = -1.0
        if not 0.0 <= value <= 1.0:
            raise ServiceError("'min_agreement' must be a number from 0 to 1.", field="min_agreement")
        if kind not in AGREEMENT_KINDS:
            raise ServiceError(
                "'min_agreement' applies to rm_pairs, rm_rankings and ratings only.", field="min_agreement"
            )
        clean["min_agreement"] = value
    if filters.get("min_labeler_agreement") not in (None, ""):
        try:
            value = float(filters["min_labeler_agreement"])
        except (TypeError, ValueError):
            value = -1.0
        if not 0.0 <= value <= 1.0:
            raise ServiceError(
                "'min_labeler_agreement' must be a number from 0 to 1.", field="min_labeler_agreement"
            )
        if kind not in AGREEMENT_KINDS:
            raise ServiceError(
                "'min_labeler_agreement' applies to rm_pairs, rm_rankings and ratings only.",
                field="min_labeler_agreement",
            )
        clean["min_labeler_agreement"] = value
    include_pii = filters.get("include_pii", False)
    if not isinstance(include_pii, bool):
        raise ServiceError("'include_pii' must be true or false.", field="include_pii")
    if include_pii:
        clean["include_pii"] = True
    return clean


def _labelers_kept(clean: dict) -> list[int]:
    """The labelers filter, narrowed to labelers whose agreement with the others reaches the minimum.
    [0] (no such user) when nobody qualifies, so the export is empty rather than unfiltered."""
    labelers = list(clean.get("labelers", ()))
    if "min_labeler_agreement" not in clean:
        return labelers
    agreeing = quality.labelers_with_agreement_at_least(
        threshold=clean["min_labeler_agreement"], batches=clean.get("batches") or None
    )
    kept = sorted(agreeing & set(labelers)) if labelers else sorted(agreeing)
    return kept or [0]


def query_filters(clean: dict) -> rows.ExportFilters:
    """Clean filters as the export queries take them (labeling/selectors/exports.py)."""
    return rows.ExportFilters(
        batches=clean.get("batches", ()),
        split=clean.get("split", ()),
        category=clean.get("category", ()),
        created_after=datetime.fromisoformat(clean["created_after"]) if "created_after" in clean else None,
        created_before=datetime.fromisoformat(clean["created_before"]) if "created_before" in clean else None,
        labelers=_labelers_kept(clean),
        include_pii=clean.get("include_pii", False),
        task_ids=sorted(quality.task_ids_with_agreement(min_agreement=clean["min_agreement"]))
        if "min_agreement" in clean
        else None,
    )
