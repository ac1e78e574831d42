"""Dataset snapshots: immutable, versioned JSONL exports that the training side reads.

Kinds (one JSON object per line; every line also carries ids, the labeler's pseudonym and the split):
    sft          {"prompt", "completion"}                 demonstrations   (TRL SFTTrainer)
    rm_pairs     {"prompt", "chosen", "rejected"}         one per comparison (RewardTrainer, DPOTrainer)
    rm_rankings  {"prompt", "completions", "ranks"}       one per ranking; rank 0 is the best, ties share;
                 "likert" and "flags" per completion (same order), the ranking's "comment", "all_unusable"
    ratings      {"prompt", "completion", "rank", "likert", "flags", "comment", "all_unusable"}
                                                          one per (ranking, completion), in ranking order
    prompts      {"prompt"}                               prompts (PPO)
A Likert score is 1 to 7, or null (a ranking marked all unusable needs none); "flags" is the rating's metadata
as stored ({flag: true/false}, keys of labeling.vocab.FLAGS; {} when none was given). Consensus lines (one per
task, "rankings": "consensus") merge several labelers: they carry no Likert, flags or comment.

Each snapshot records what it holds ("contents": lines per batch, and lines from no batch), counted right after
its file is written; a model's lineage names its batches from it.

Formats: "standard" writes the texts as strings (above); "conversational" writes TRL's conversational format,
each text as a list of chat messages ({"content", "role"}: the prompt spoken by the user, completions by the
assistant; rm_rankings' "completions" one list per completion), so a chat model trains with its own chat
template. Every other key is the same in both.

The same filters over the same data give the same bytes: a fixed order and
json.dumps(sort_keys=True, ensure_ascii=False). The file is written to a temporary name, its sha256
and row count taken on the way, and renamed into MEDIA_ROOT/datasets/ only when complete; on any
error nothing is recorded and the partial file is removed.
"""

import hashlib
import logging
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, time
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from uuid import uuid4

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from audit.services import Action, audit_record
from core.errors import ServiceError
from core.storable import unstorable

from ..media import media_open, media_path
from ..models import Batch, DatasetSnapshot, SnapshotFormat, SnapshotKind
from ..quality import selectors as quality
from ..ranking_rules import comparison_pairs
from ..selectors import exports as rows
from ..vocab import Category, Split
from .consensus import ranked_pairs
from .undo import submissions_finalise

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

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
log = logging.getLogger(__name__)

SOURCES: dict[str, Callable[[rows.ExportFilters], rows.Source]] = {
    SnapshotKind.SFT: rows.sft_source,
    SnapshotKind.PROMPTS: rows.prompts_source,
    SnapshotKind.RM_PAIRS: rows.rm_pairs_source,
    SnapshotKind.RM_RANKINGS: rows.ranking_items_source,
    SnapshotKind.RATINGS: rows.ratings_source,
}


def datasets_folder() -> Path:
    return Path(settings.MEDIA_ROOT) / "datasets"


def snapshot_path(snapshot: DatasetSnapshot) -> Path:
    """Where the snapshot's JSONL file lies; refused when its stored path leads out of MEDIA_ROOT."""
    return media_path(snapshot.file, owner=f"snapshot {snapshot.pk}")


def snapshot_open(snapshot: DatasetSnapshot) -> BinaryIO:
    """The snapshot's file, open to read; a ServiceError says why not (labeling.media.media_open)."""
    return media_open(snapshot.file, owner=f"snapshot {snapshot.pk}")


def _name(kind: str, format: str) -> str:
    """The start of a snapshot's file names: its kind, and its format unless standard."""
    return kind if format == SnapshotFormat.STANDARD else f"{kind}-{format}"


def snapshot_download_name(snapshot: DatasetSnapshot) -> str:
    """The file name a download of the snapshot is offered under."""
    return f"{_name(snapshot.kind, snapshot.format)}-{snapshot.pk}.jsonl"


# --- filters -----------------------------------------------------------------------------------------


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


def _query_filters(clean: dict) -> rows.ExportFilters:
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


# --- rows --------------------------------------------------------------------------------------------


def _consensus_rows(kind: str, f: rows.ExportFilters, held: Counter[int | None]) -> Iterator[dict]:
    """One consensus ranking per task (ranked pairs, see consensus.py) from every ranking of it; `held`
    counts its lines by batch."""
    for _, items in groupby(
        rows.stream_rows(rows.ranking_items_source(f, by_task=True)), key=lambda r: r["task_id"]
    ):
        group = list(items)  # the rankings of one task: at most 9 rows per ranking
        first = group[0]

        order = [r["completion_id"] for r in group if r["ranking_id"] == first["ranking_id"]]
        texts = {r["completion_id"]: r["completion"] for r in group}
        by_ranking: dict[int, dict[int, int]] = {}
        for r in group:
            by_ranking.setdefault(r["ranking_id"], {})[r["completion_id"]] = r["tier"]
        tiers = ranked_pairs(list(by_ranking.values()), order)
        base = {
            "prompt": first["prompt"],
            "prompt_id": first["prompt_id"],
            "task_id": first["task_id"],
            "ranking_id": None,
            "labeler": None,
            "split": first["split"],
        }
        if kind == SnapshotKind.RM_RANKINGS:
            rank = {cid: i for i, tier in enumerate(tiers) for cid in tier}
            held[first["batch_id"]] += 1
            yield {
                **base,
                "completions": [texts[c] for c in order],
                "ranks": [rank[c] for c in order],
                "completion_ids": order,
            }
        else:
            for better, worse in comparison_pairs(tiers):
                held[first["batch_id"]] += 1
                yield {
                    **base,
                    "chosen": texts[better],
                    "rejected": texts[worse],
                    "chosen_id": better,
                    "rejected_id": worse,
                }


def dataset_lines(
    *,
    kind: str,
    filters: dict,
    format: str = SnapshotFormat.STANDARD,
    writer: str = "auto",
    held: Counter[int | None] | None = None,
) -> Iterator[bytes]:
    """The snapshot's bytes, line by line. `filters` must be clean (filters_clean), `format` known.

    writer: "auto" (COPY on Postgres, else Python), "python" or "copy"; all give the same bytes.
    held: when given, counts the lines by the batch their labels came from (None: from no batch), in a query
    run once the last line is out (snapshot_create checks that the counts add up to the file's lines).
    """
    f = _query_filters(filters)
    conversational = format == SnapshotFormat.CONVERSATIONAL
    if kind in RANKING_KINDS and filters.get("rankings") == "consensus":
        return (
            rows.json_line(rows.as_conversation(obj) if conversational else obj)
            for obj in _consensus_rows(kind, f, Counter() if held is None else held)
        )
    source = SOURCES[kind](f)
    use_copy = writer == "copy" or (writer == "auto" and connection.vendor == "postgresql")
    write = rows.json_lines_copy if use_copy else rows.json_lines
    lines = write(source, conversational=conversational)
    return lines if held is None else _counted(lines, source, held)


def _counted(lines: Iterator[bytes], source: rows.Source, held: Counter[int | None]) -> Iterator[bytes]:
    yield from lines
    held.update(rows.batch_rows(source))


def snapshot_contents(held: Counter[int | None]) -> dict:
    """What a snapshot records it holds: {"batches": {batch id: lines}, "outside_batches": lines}."""
    batches = sorted((batch, n) for batch, n in held.items() if batch is not None and n)
    return {"batches": {str(batch): n for batch, n in batches}, "outside_batches": held.get(None, 0)}


# --- snapshots ---------------------------------------------------------------------------------------


def snapshot_check(*, kind: str, format: str, filters: dict | None) -> dict:
    """Check what an export asks for (a job checks it before it is queued); the clean filters."""
    if kind not in SnapshotKind.values:
        raise ServiceError(
            f"unknown kind '{kind}'; choose one of: {', '.join(SnapshotKind.values)}.", field="kind"
        )
    if format not in SnapshotFormat.values:
        raise ServiceError(
            f"unknown format {format!r}; choose one of: {', '.join(SnapshotFormat.values)}.", field="format"
        )
    return filters_clean(kind=kind, filters=filters)


def no_progress(rows: int) -> None:
    pass


class LabelsMoved(Exception):
    """The per-batch counts, taken right after the file (a statement of their own, which sees labels committed
    meanwhile), disagree with the file's lines: the export is written again."""


WRITE_ATTEMPTS = 3


def snapshot_create(
    *,
    kind: str,
    filters: dict | None,
    created_by: "User | None" = None,
    format: str = SnapshotFormat.STANDARD,
    progress: Callable[[int], None] = no_progress,
) -> DatasetSnapshot:
    """Export a dataset to MEDIA_ROOT/datasets/ and record it, all or nothing. A file system failure
    (disk full, MEDIA_ROOT not a writable folder) is a ServiceError with code "storage_unavailable".
    `progress(rows)` is called with the rows written so far as the file grows (an export job's)."""
    clean = snapshot_check(kind=kind, format=format, filters=filters)
    submissions_finalise()  # labels whose undo window has closed count: written before the file is
    try:
        for _ in range(WRITE_ATTEMPTS - 1):
            try:
                return _snapshot_write(
                    kind=kind, format=format, clean=clean, created_by=created_by, progress=progress
                )
            except LabelsMoved as exc:
                log.info("labels changed during the export, writing it again: %s", exc)
        return _snapshot_write(
            kind=kind, format=format, clean=clean, created_by=created_by, progress=progress
        )
    except LabelsMoved as exc:
        raise ServiceError(
            "Labels kept arriving while the export was written, so what it holds could not be counted "
            "exactly; nothing was recorded. Try again.",
            code="labels_moved",
        ) from exc
    except OSError as exc:
        log.warning("dataset export failed: %s", exc)  # the full path, for whoever fixes the disk
        raise ServiceError(
            f"Could not write the export to MEDIA_ROOT/datasets/: {exc.strerror or exc}. Nothing was "
            "recorded; check the free disk space and that MEDIA_ROOT is a writable folder, then try again.",
            code="storage_unavailable",
        ) from exc


def _snapshot_write(
    *, kind: str, format: str, clean: dict, created_by: "User | None", progress: Callable[[int], None]
) -> DatasetSnapshot:
    folder = datasets_folder()
    folder.mkdir(parents=True, exist_ok=True)
    name = _name(kind, format)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{name}-", suffix=".part", dir=folder)
    tmp, final = Path(tmp_name), None
    try:
        digest, row_count, held = hashlib.sha256(), 0, Counter[int | None]()
        # In a savepoint when the caller has a transaction (a round's export step): a stream that dies
        # midway (disk full) cancels its COPY, which then aborts the savepoint, not the caller's transaction.
        with os.fdopen(fd, "wb") as out, transaction.atomic():
            for chunk in dataset_lines(kind=kind, filters=clean, format=format, held=held):
                out.write(chunk)
                digest.update(chunk)
                row_count += chunk.count(b"\n")
                progress(row_count)
            out.flush()
            os.fsync(out.fileno())
        if held.total() != row_count:
            raise LabelsMoved(f"{row_count} lines written, {held.total()} counted by batch")
        sha256 = digest.hexdigest()
        final = folder / f"{name}-{timezone.now():%Y%m%dT%H%M%S}-{sha256[:12]}-{uuid4().hex[:6]}.jsonl"
        with transaction.atomic():
            snapshot = DatasetSnapshot.objects.create(
                kind=kind,
                format=format,
                filters=clean,
                contents=snapshot_contents(held),
                row_count=row_count,
                sha256=sha256,
                file=final.relative_to(settings.MEDIA_ROOT).as_posix(),
                created_by=created_by,
            )
            audit_record(
                actor=created_by,
                action=Action.SNAPSHOT_CREATED,
                target=snapshot,
                details={
                    "kind": kind,
                    "format": format,
                    "filters": clean,
                    "row_count": row_count,
                    "sha256": sha256,
                },
            )
            os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        if final is not None:
            final.unlink(missing_ok=True)
        raise
    return snapshot


def snapshot_delete(*, snapshot: DatasetSnapshot, actor: "User | AnonymousUser | None" = None) -> None:
    """Delete a snapshot and its file; refused while a model version was trained on it. A row whose
    stored path leads out of MEDIA_ROOT is deleted, and that path left alone."""
    try:
        path = snapshot_path(snapshot)
    except ServiceError:
        path = None
    try:
        with transaction.atomic():
            audit_record(
                actor=actor,
                action=Action.SNAPSHOT_DELETED,
                target=snapshot,
                details={
                    "kind": snapshot.kind,
                    "format": snapshot.format,
                    "row_count": snapshot.row_count,
                    "sha256": snapshot.sha256,
                },
            )
            snapshot.delete()
    except ProtectedError as exc:
        names = sorted({str(getattr(obj, "model_version", obj)) for obj in exc.protected_objects})
        raise ServiceError(
            f"snapshot {snapshot.pk} cannot be deleted: model version(s) {', '.join(names)} were trained on it.",
            field="snapshot",
            code="protected",
        ) from None
    if path is not None:
        transaction.on_commit(lambda: path.unlink(missing_ok=True))
