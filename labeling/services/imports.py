"""Imports: prompts from JSONL or CSV, and completions (model outputs to rank) from JSONL.

A file is read twice, streamed line by line (each line at most IMPORT_MAX_LINE_BYTES, see
import_files.py): the first pass checks every line and collects errors naming the line and the field (a
bad file is rejected whole, nothing written); the second pass writes in chunks with bulk_create inside one
transaction. Memory grows only with the set of prompt keys seen. Pages and the API run imports as jobs
(jobs.py), on a worker; the management commands call these functions directly.

Prompt hygiene (InstructGPT section 3.2) as in labeling.services.prompts: a prompt whose opening
PROMPT_DEDUP_PREFIX_CHARS characters match a stored one (or an earlier line) is a duplicate and is
skipped, so re-importing a file adds nothing; at most PROMPTS_PER_ORIGIN_USER prompts per origin user
(the rest are skipped and counted); the split follows the origin user. A line without an origin user
counts as its own origin. PII is flagged (pii_flag) or scrubbed (replaced by [EMAIL], [PHONE], ...).
"""

import os
from bisect import insort
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count

from core.errors import ServiceError
from core.storable import unstorable

from ..models import Batch, Completion, Prompt, TaskCompletion
from ..pii import find_pii, scrub_pii
from ..vocab import K_MAX, K_MIN, Category, PromptSource
from .batches import RANKING_KINDS, batch_add_prompt_tasks, batch_add_ranking_tasks, batch_create
from .import_files import FORMATS, PROMPT_FIELDS, jsonl_records, records  # noqa: F401 (FORMATS: the edges')
from .prompts import dedup_key, split_for

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PII_MODES = ("flag", "scrub")
MAX_ERRORS = 50
CHUNK = 1000
TEXT_MAX_CHARS = 100_000
CATEGORIES = frozenset(Category.values)
# Called as progress(done, total, message) as an import goes (a job records it, see jobs.py): bytes
# checked of the file's size, then lines stored of the lines checked.
Progress = Callable[[int, int, str], None]


def no_progress(done: int, total: int, message: str) -> None:
    pass


COMPLETION_FIELDS = ("prompt", "prompt_id", "completions", "model", "category", "origin_user")


@dataclass(frozen=True)
class LineError:
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.field + ': ' if self.field else ''}{self.message}"

    def as_dict(self) -> dict:
        return {"line": self.line, "field": self.field, "message": self.message}


class ImportRejected(ServiceError):
    """The file has errors; nothing was imported. `errors` lists the first MAX_ERRORS."""

    def __init__(self, errors: list[LineError], total: int) -> None:
        more = f" (and {total - len(errors)} more)" if total > len(errors) else ""
        super().__init__(
            f"the file was rejected, nothing was imported: {errors[0]}{more}.",
            field=errors[0].field or "file",
            code="bad_file",
        )
        self.errors = errors
        self.total = total

    def as_dict(self) -> dict:
        return {**super().as_dict(), "errors": [e.as_dict() for e in self.errors], "error_count": self.total}


class _Errors:
    """Every error of a file, counted; the MAX_ERRORS of the earliest lines kept in line order, whichever
    check found them (a line's own checks or the look-up of its prompt_id), so one answer reports them all."""

    def __init__(self) -> None:
        self.first: list[LineError] = []
        self.total = 0

    def add(self, line: int, field_name: str, message: str) -> None:
        self.total += 1
        if len(self.first) == MAX_ERRORS and line >= self.first[-1].line:
            return
        insort(self.first, LineError(line, field_name, message), key=lambda error: error.line)
        del self.first[MAX_ERRORS:]

    def raise_if_any(self) -> None:
        if self.total:
            raise ImportRejected(self.first, self.total)


# --- checking a line --------------------------------------------------------------------------------


def _text(
    obj: Mapping, key: str, errors: _Errors, line: int, *, required: bool, max_chars: int = TEXT_MAX_CHARS
) -> Any:
    value = obj.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.add(line, key, "is required and must not be empty")
        return None
    if not isinstance(value, str):
        errors.add(line, key, f"must be a string, got {type(value).__name__}")
    elif len(value) > max_chars:
        errors.add(line, key, f"is longer than {max_chars} characters")
    elif problem := unstorable(value):
        errors.add(line, key, problem)
    return value


def _unknown_fields(obj: Mapping, allowed: tuple[str, ...], errors: _Errors, line: int) -> None:
    for key in sorted(set(obj) - set(allowed)):
        errors.add(line, key, f"unknown field (known fields: {', '.join(allowed)})")


def _category(obj: Mapping, errors: _Errors, line: int, *, required: bool) -> None:
    value = _text(obj, "category", errors, line, required=required)
    if isinstance(value, str) and value not in CATEGORIES:
        errors.add(
            line, "category", f"unknown category '{value}'; choose one of: {', '.join(Category.values)}"
        )


def _check_prompt_line(obj: Mapping, errors: _Errors, line: int) -> None:
    _unknown_fields(obj, PROMPT_FIELDS, errors, line)
    _text(obj, "text", errors, line, required=True)
    _category(obj, errors, line, required=True)
    _text(obj, "origin_user", errors, line, required=False, max_chars=200)
    if "metadata" in obj and not isinstance(obj["metadata"], dict):
        errors.add(line, "metadata", "must be a JSON object")
    elif problem := unstorable(obj.get("metadata")):
        errors.add(line, "metadata", problem)


def _check_completion_line(obj: Mapping, errors: _Errors, line: int) -> None:
    _unknown_fields(obj, COMPLETION_FIELDS, errors, line)
    if ("prompt" in obj) == ("prompt_id" in obj):
        errors.add(line, "prompt", "give either 'prompt' (the text) or 'prompt_id', not both and not neither")
    elif "prompt" in obj:
        _text(obj, "prompt", errors, line, required=True)
    elif isinstance(obj["prompt_id"], bool) or not isinstance(obj["prompt_id"], int):
        errors.add(line, "prompt_id", "must be a whole number")
    _text(obj, "model", errors, line, required=True, max_chars=200)
    _category(obj, errors, line, required=False)
    _text(obj, "origin_user", errors, line, required=False, max_chars=200)
    completions = obj.get("completions")
    if not isinstance(completions, list) or not K_MIN <= len(completions) <= K_MAX:
        got = len(completions) if isinstance(completions, list) else type(completions).__name__
        errors.add(line, "completions", f"must hold {K_MIN} to {K_MAX} items, got {got}")
    elif not all(isinstance(c, str) and c.strip() for c in completions):
        errors.add(line, "completions", "every completion must be a non-empty string")
    elif any(len(c) > TEXT_MAX_CHARS for c in completions):
        errors.add(line, "completions", f"a completion is longer than {TEXT_MAX_CHARS} characters")
    elif problem := next(filter(None, map(unstorable, completions)), None):
        errors.add(line, "completions", f"a completion {problem}")
    elif len(set(completions)) != len(completions):
        errors.add(line, "completions", "the same completion text appears twice")


def _size(file: IO[bytes]) -> int:
    file.seek(0, os.SEEK_END)
    return file.tell()


def _first_pass(
    file: IO[bytes],
    fmt: str,
    check: Callable[[Mapping, _Errors, int], None],
    progress: Progress,
    errors: _Errors | None = None,
) -> int:
    """Check every line, raise ImportRejected naming the bad ones (with any `errors` found before); the
    number of records."""
    errors, count, size = errors or _Errors(), 0, _size(file)
    for line, obj in records(file, fmt):
        if isinstance(obj, str):
            errors.add(line, "", obj)
        else:
            check(obj, errors, line)
            count += 1
        progress(file.tell(), size, f"checked {line:,} lines")
    errors.raise_if_any()
    return count


# --- writing ----------------------------------------------------------------------------------------


def _lock_imports() -> None:
    """One import at a time (on Postgres), so two imports of the same file cannot both add it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(hashtext('labeling.imports'))")


def _clean_prompt(text: str, pii: str) -> tuple[str, bool, list[str]]:
    """(text to store, pii_flag, kinds scrubbed)."""
    text = text.strip()
    kinds = find_pii(text)
    if kinds and pii == "scrub":
        return scrub_pii(text), False, kinds
    return text, bool(kinds), []


def _new_prompt(
    cleaned: tuple[str, bool, list[str]],
    key: str,
    *,
    category: str,
    origin_user: str | None,
    metadata: dict,
    created_by: "User | None",
) -> Prompt:
    text, flag, scrubbed = cleaned
    origin = (origin_user or "").strip() or f"prompt:{key[:16]}"
    if scrubbed:
        metadata = {**metadata, "pii_scrubbed": scrubbed}
    return Prompt(
        text=text,
        category=category,
        source=PromptSource.IMPORTED,
        author=created_by,
        origin_user=origin,
        split=split_for(origin),
        dedup_key=key,
        pii_flag=flag,
        metadata=metadata,
    )


def _check_pii_mode(pii: str) -> None:
    if pii not in PII_MODES:
        raise ServiceError(f"'pii' must be one of: {', '.join(PII_MODES)}.", field="pii")


@dataclass
class PromptImportResult:
    lines: int = 0
    created: int = 0
    duplicates: int = 0  # already stored, or repeated earlier in the file
    capped: int = 0  # over PROMPTS_PER_ORIGIN_USER
    pii_flagged: int = 0
    pii_scrubbed: int = 0
    batch: Batch | None = None


def prompts_import(
    *,
    file: IO[bytes],
    format: str,
    pii: str = "flag",
    created_by: "User | None" = None,
    demonstration_batch: Mapping | None = None,
    progress: Progress = no_progress,
) -> PromptImportResult:
    """Import prompts (fields: text, category, origin_user, metadata). With `demonstration_batch` (the
    settings of batch_create, name required), the prompts this import created become its tasks."""
    _check_pii_mode(pii)
    total = _first_pass(file, format, _check_prompt_line, progress)
    result, seen, per_origin = PromptImportResult(), set[str](), dict[str, int]()
    cap = settings.PROMPTS_PER_ORIGIN_USER
    created_ids: list[int] = []

    def flush(chunk: list[Prompt]) -> None:
        stored = set(
            Prompt.objects.filter(dedup_key__in=[p.dedup_key for p in chunk]).values_list(
                "dedup_key", flat=True
            )
        )
        fresh = [p for p in chunk if p.dedup_key not in stored]
        result.duplicates += len(chunk) - len(fresh)
        unknown = {p.origin_user for p in fresh} - set(per_origin)
        per_origin.update(dict.fromkeys(unknown, 0))
        for origin, n in (
            Prompt.objects.filter(origin_user__in=unknown).values_list("origin_user").annotate(n=Count("pk"))
        ):
            per_origin[origin] = n
        kept = []
        for p in fresh:
            if per_origin[p.origin_user] >= cap:
                result.capped += 1
                continue
            per_origin[p.origin_user] += 1
            kept.append(p)
        created = Prompt.objects.bulk_create(kept)
        result.created += len(created)
        result.pii_flagged += sum(p.pii_flag for p in created)
        result.pii_scrubbed += sum("pii_scrubbed" in p.metadata for p in created)
        if demonstration_batch is not None:
            created_ids.extend(p.pk for p in created)
        progress(result.lines, total, f"stored {result.lines:,} of {total:,} lines")

    with transaction.atomic():
        _lock_imports()
        chunk: list[Prompt] = []
        for _, obj in records(file, format):
            assert isinstance(obj, dict)  # _first_pass refused any line that is not an object
            result.lines += 1
            cleaned = _clean_prompt(obj["text"], pii)
            key = dedup_key(cleaned[0])
            if key in seen:
                result.duplicates += 1
                continue
            seen.add(key)
            chunk.append(
                _new_prompt(
                    cleaned,
                    key,
                    category=obj["category"],
                    origin_user=obj.get("origin_user"),
                    metadata=obj.get("metadata") or {},
                    created_by=created_by,
                )
            )
            if len(chunk) >= CHUNK:
                flush(chunk)
                chunk = []
        if chunk:
            flush(chunk)
        if demonstration_batch is not None and created_ids:
            result.batch = batch_create(
                **{**demonstration_batch, "kind": Batch.Kind.DEMONSTRATION, "created_by": created_by}
            )
            batch_add_prompt_tasks(batch=result.batch, prompt_ids=created_ids)
    return result


@dataclass
class CompletionImportResult:
    lines: int = 0
    prompts_created: int = 0
    completions_created: int = 0
    tasks_created: int = 0
    already_imported: int = 0  # lines whose completions already form a task
    batch: Batch | None = None


def _check_prompt_ids(file: IO[bytes]) -> _Errors:
    """Every prompt_id (a whole number, on a line without 'prompt': the rest is the line checks' to report)
    must exist. Run before those checks, into the same errors, so missing prompts come in the same answer."""
    errors, pending = _Errors(), dict[int, int]()

    def check() -> None:
        found = set(Prompt.objects.filter(pk__in=list(pending)).values_list("pk", flat=True))
        for pk, line in sorted(pending.items(), key=lambda item: item[1]):
            if pk not in found:
                errors.add(line, "prompt_id", f"prompt {pk} does not exist")
        pending.clear()

    for line, obj in jsonl_records(file):
        pk = obj.get("prompt_id") if isinstance(obj, dict) and "prompt" not in obj else None
        if isinstance(pk, int) and not isinstance(pk, bool):
            pending.setdefault(pk, line)
            if len(pending) >= CHUNK:
                check()
    check()
    return errors


def completions_import(
    *,
    file: IO[bytes],
    batch: Mapping,
    pii: str = "flag",
    created_by: "User | None" = None,
    progress: Progress = no_progress,
) -> CompletionImportResult:
    """Import model outputs and make a ranking batch of them: one task per line.

    Line fields: "prompt" (text) or "prompt_id", "completions" (2 to 9 strings), "model" (the name of the
    model that wrote them), and for a prompt not stored yet "category" (default other) and "origin_user".
    `batch` holds the settings of batch_create (name required; kind ranking or evaluation). A line whose
    completions already form a task adds nothing, so re-importing a file adds nothing (and no batch).
    """
    _check_pii_mode(pii)
    kind = batch.get("kind", Batch.Kind.RANKING)
    if kind not in RANKING_KINDS:
        raise ServiceError("imported completions make a ranking or an evaluation batch.", field="kind")
    total = _first_pass(file, "jsonl", _check_completion_line, progress, errors=_check_prompt_ids(file))
    result, seen = CompletionImportResult(), set[frozenset[int]]()
    with transaction.atomic():
        _lock_imports()
        chunk: list[dict] = []
        for _, obj in jsonl_records(file):
            assert isinstance(obj, dict)  # _first_pass refused any line that is not an object
            result.lines += 1
            chunk.append(obj)
            if len(chunk) >= CHUNK:
                _write_completion_lines(
                    chunk, result, seen, batch_settings=batch, pii=pii, created_by=created_by
                )
                chunk = []
                progress(result.lines, total, f"stored {result.lines:,} of {total:,} lines")
        if chunk:
            _write_completion_lines(chunk, result, seen, batch_settings=batch, pii=pii, created_by=created_by)
    return result


def _resolve_prompts(
    lines: list[dict], result: CompletionImportResult, *, pii: str, created_by: "User | None"
) -> list[int]:
    """The prompt id of each line; prompts given by text are found by their dedup key or created."""
    keys, cleaned = {}, {}
    for obj in lines:
        if "prompt" in obj:
            cleaned[id(obj)] = _clean_prompt(obj["prompt"], pii)
            keys[id(obj)] = dedup_key(cleaned[id(obj)][0])
    stored = dict(Prompt.objects.filter(dedup_key__in=set(keys.values())).values_list("dedup_key", "pk"))
    new: dict[str, Prompt] = {}
    for obj in lines:
        key = keys.get(id(obj))
        if key is not None and key not in stored and key not in new:
            new[key] = _new_prompt(
                cleaned[id(obj)],
                key,
                category=obj.get("category") or Category.OTHER,
                origin_user=obj.get("origin_user"),
                metadata={},
                created_by=created_by,
            )
    for p in Prompt.objects.bulk_create(new.values()):
        stored[p.dedup_key] = p.pk
    result.prompts_created += len(new)
    return [obj["prompt_id"] if "prompt_id" in obj else stored[keys[id(obj)]] for obj in lines]


def _write_completion_lines(
    lines: list[dict],
    result: CompletionImportResult,
    seen: set[frozenset[int]],
    *,
    batch_settings: Mapping,
    pii: str,
    created_by: "User | None",
) -> None:
    """Prompts, completions and tasks of one chunk of lines; `seen` holds the groups made so far."""
    prompt_ids = _resolve_prompts(lines, result, pii=pii, created_by=created_by)
    wanted = {
        (pid, obj["model"], text)
        for pid, obj in zip(prompt_ids, lines, strict=True)
        for text in obj["completions"]
    }
    existing = {
        (c.prompt_id, c.source_name, c.text): c
        for c in Completion.objects.filter(
            prompt_id__in=set(prompt_ids), source_name__in={o["model"] for o in lines}
        )
        if (c.prompt_id, c.source_name, c.text) in wanted
    }
    missing = [Completion(prompt_id=p, source_name=m, text=t) for (p, m, t) in sorted(wanted - set(existing))]
    for c in Completion.objects.bulk_create(missing):
        existing[(c.prompt_id, c.source_name, c.text)] = c
    result.completions_created += len(missing)

    groups = [
        [existing[(pid, obj["model"], t)] for t in obj["completions"]]
        for pid, obj in zip(prompt_ids, lines, strict=True)
    ]
    tasks_of: dict[int, set[int]] = {}
    for task_id, completion_id in TaskCompletion.objects.filter(
        completion_id__in=[c.pk for g in groups for c in g]
    ).values_list("task_id", "completion_id"):
        tasks_of.setdefault(completion_id, set()).add(task_id)
    fresh = []
    for group in groups:
        ids = frozenset(c.pk for c in group)
        common = set.intersection(*(tasks_of.get(pk, set()) for pk in ids))
        if common or ids in seen:
            result.already_imported += 1
            continue
        seen.add(ids)
        fresh.append(group)
    if not fresh:
        return
    if result.batch is None:
        result.batch = batch_create(
            **{"kind": Batch.Kind.RANKING, **batch_settings, "created_by": created_by}
        )
    result.tasks_created += batch_add_ranking_tasks(batch=result.batch, groups=fresh)
