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
from collections.abc import Callable, Iterator
from itertools import groupby
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from uuid import uuid4

from django.conf import settings
from django.db import connection, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from audit.services import Action, audit_record
from core.errors import ServiceError

from ..media import media_open, media_path
from ..models import DatasetSnapshot, SnapshotFormat, SnapshotKind
from ..ranking_rules import comparison_pairs
from ..selectors import exports as rows
from .consensus import ranked_pairs
from .export_filters import RANKING_KINDS, filters_clean, query_filters
from .undo import submissions_finalise

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser, User

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
    """The snapshot's bytes, line by line. `filters` must be clean (export_filters.filters_clean), `format` known.

    writer: "auto" (COPY on Postgres, else Python), "python" or "copy"; all give the same bytes.
    held: when given, counts the lines by the batch their labels came from (None: from no batch), in a query
    run once the last line is out (snapshot_create checks that the counts add up to the file's lines).
    """
    f = query_filters(filters)
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
