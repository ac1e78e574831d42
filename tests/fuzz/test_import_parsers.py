"""Hypothesis against the import parsers: prompts (JSONL, CSV) and completions (JSONL) made of any bytes,
any JSON and any text (NUL, lone surrogates, BOMs, CRLF, blank lines, huge numbers, wrong types per field,
lines over IMPORT_MAX_LINE_BYTES).

A file either imports, and the rows match it, or is rejected with an ImportRejected naming every bad line
and field, and then nothing at all is written. Each example runs in a savepoint rolled back after it."""

import csv
import io
import json
from contextlib import contextmanager

import pytest
from django.apps import apps
from django.db import connection, transaction
from django.test import override_settings
from hypothesis import event, given
from hypothesis import strategies as st

from labeling.models import Prompt, Task
from labeling.services.imports import (
    COMPLETION_FIELDS,
    PROMPT_FIELDS,
    ImportRejected,
    completions_import,
    prompts_import,
)
from labeling.services.prompts import dedup_key
from labeling.vocab import Category
from tests.factories import PromptFactory
from tests.fuzz.strategies import (
    FUZZ,
    any_text,
    files,
    json_lines,
    json_values,
    mostly,
    plain_text,
    spiced_text,
)

pytestmark = pytest.mark.django_db

# Every table an import could write: the labeling app's, and the audit trail's (a new batch is audited).
TABLES = [m for m in apps.get_models() if m._meta.app_label in ("labeling", "audit")]
categories = st.one_of(st.sampled_from(Category.values), json_values)
texts = st.one_of(plain_text, any_text, json_values)

# Good records (so that files import too), good ones with a tricky character in some text, and hostile
# ones: any value in any field, unknown fields.
fair_text = mostly(plain_text, spiced_text)
prompt_records = mostly(
    st.fixed_dictionaries(
        {"text": fair_text, "category": st.sampled_from(Category.values)},
        optional={"origin_user": fair_text, "metadata": st.dictionaries(fair_text, fair_text, max_size=2)},
    ),
    st.fixed_dictionaries(
        {"text": texts, "category": categories},
        optional={
            "origin_user": texts,
            "metadata": st.one_of(st.dictionaries(any_text, json_values, max_size=3), json_values),
            "colour": json_values,
        },
    ),
)


def _counts() -> dict[str, int]:
    """Rows per table, in one query."""
    counts = ", ".join(f'(SELECT count(*) FROM "{m._meta.db_table}")' for m in TABLES)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        return dict(zip((m.__name__ for m in TABLES), cursor.fetchone(), strict=True))


@contextmanager
def _rolled_back():
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def _lines(data: bytes) -> list[str]:
    """What the parser reads: UTF-8 lines split on LF, a BOM dropped from the first."""
    data = data.removeprefix(b"\xef\xbb\xbf")
    return [raw.decode("utf-8") for raw in io.BytesIO(data)]


def _assert_rejected_cleanly(exc: ImportRejected, data: bytes, before: dict, fields: tuple[str, ...]) -> None:
    event("rejected")
    assert _counts() == before, "a rejected file wrote rows"
    physical_lines = max(1, data.count(b"\n") + 1)
    assert exc.errors and str(exc).startswith("the file was rejected, nothing was imported: line ")
    for error in exc.errors:
        assert 1 <= error.line <= physical_lines, error
        assert error.message and str(error).startswith(f"line {error.line}: ")
        assert error.field in ("", *fields) or error.message.startswith("unknown field"), error


def _expected_prompts(records: list[dict]) -> list[tuple]:
    """(text, category, origin user, metadata) of each prompt a good file creates, in order."""
    seen, rows = set(), []
    for record in records:
        text = record["text"].strip()
        key = dedup_key(text)
        if key not in seen:
            seen.add(key)
            origin = (record.get("origin_user") or "").strip() or f"prompt:{key[:16]}"
            rows.append((text, record["category"], origin, record.get("metadata") or {}))
    return rows


def _stored_prompts() -> list[tuple]:
    return list(Prompt.objects.order_by("pk").values_list("text", "category", "origin_user", "metadata"))


@FUZZ
@given(data=files(st.lists(json_lines(prompt_records), max_size=5)))
def test_a_prompts_jsonl_file_imports_or_is_rejected_naming_the_line(data):
    with _rolled_back():
        before = _counts()
        try:
            result = prompts_import(file=io.BytesIO(data), format="jsonl")
        except ImportRejected as exc:
            _assert_rejected_cleanly(exc, data, before, PROMPT_FIELDS)
            return
        event("imported")
        records = [json.loads(line) for line in _lines(data) if line.strip()]
        assert result.lines == len(records)
        assert _stored_prompts() == _expected_prompts(records)


def _over_the_limit(data: bytes, limit: int) -> list[int]:
    """The lines the reader names as too long: each over `limit` bytes (LF not counted), up to the first
    line that is not UTF-8, where reading stops (a long line is skipped unread, so it never stops it)."""
    named = []
    for number, raw in enumerate(io.BytesIO(data), start=1):
        if len(raw.removesuffix(b"\n")) > limit:
            named.append(number)
            continue
        try:
            (raw.removeprefix(b"\xef\xbb\xbf") if number == 1 else raw).decode("utf-8")
        except UnicodeDecodeError:
            break
    return named


@FUZZ
@given(data=files(st.lists(json_lines(prompt_records), max_size=5)), limit=st.integers(8, 160))
def test_every_line_over_the_limit_is_named_and_then_nothing_is_stored(data, limit):
    over = _over_the_limit(data, limit)
    with _rolled_back(), override_settings(IMPORT_MAX_LINE_BYTES=limit):
        before = _counts()
        try:
            prompts_import(file=io.BytesIO(data), format="jsonl")
        except ImportRejected as exc:
            _assert_rejected_cleanly(exc, data, before, PROMPT_FIELDS)
            assert [e.line for e in exc.errors if "IMPORT_MAX_LINE_BYTES" in e.message] == over
            event("a line over the limit" if over else "rejected for other reasons")
            return
        assert over == []


def _csv_line(cells: list) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([c if isinstance(c, str) else json.dumps(c) for c in cells])
    return out.getvalue()


@st.composite
def csv_lines(draw) -> list[str]:
    """A header (the right columns in any order, or any cells), then good rows and rows of any cells."""
    columns = ["text", "category", *draw(st.sets(st.sampled_from(["origin_user", "metadata"])))]
    header = draw(mostly(st.permutations(columns), st.lists(any_text, max_size=4)))
    good = {
        "text": fair_text,
        "category": st.sampled_from(Category.values),
        "origin_user": fair_text,
        "metadata": st.dictionaries(fair_text, fair_text, max_size=2).map(json.dumps),
    }
    hostile = {
        "text": texts,
        "category": categories,
        "origin_user": texts,
        "metadata": st.one_of(json_values.map(json.dumps), any_text),
    }
    row = mostly(
        st.tuples(*(good.get(c, any_text) for c in header)),
        st.one_of(st.tuples(*(hostile.get(c, any_text) for c in header)), st.lists(any_text, max_size=5)),
    )
    return [_csv_line(header), *map(_csv_line, draw(st.lists(row.map(list), max_size=5)))]


@FUZZ
@given(data=files(csv_lines()))
def test_a_prompts_csv_file_imports_or_is_rejected_naming_the_line(data):
    with _rolled_back():
        before = _counts()
        try:
            result = prompts_import(file=io.BytesIO(data), format="csv")
        except ImportRejected as exc:
            _assert_rejected_cleanly(exc, data, before, PROMPT_FIELDS)
            return
        event("imported")
        reader = csv.reader(_lines(data))
        header = [h.strip() for h in next(reader, [])]
        records = []
        for cells in reader:
            if any(c.strip() for c in cells):
                record = dict(zip(header, cells, strict=True))
                if record.get("metadata", "").strip():
                    record["metadata"] = json.loads(record["metadata"])
                records.append(record)
        assert result.lines == len(records)
        assert _stored_prompts() == _expected_prompts(records)


# A prompt_id is a stored prompt ("@0", "@1", replaced when the test runs) or anything at all.
completion_records = st.fixed_dictionaries(
    {
        "completions": mostly(
            st.lists(fair_text, min_size=2, max_size=9, unique=True),
            st.one_of(st.lists(texts, max_size=10), json_values),
        ),
        "model": mostly(fair_text, texts),
    },
    optional={"category": categories, "origin_user": texts, "colour": json_values},
).flatmap(
    lambda record: st.one_of(
        st.fixed_dictionaries(
            {**{k: st.just(v) for k, v in record.items()}, "prompt": mostly(fair_text, texts)}
        ),
        st.fixed_dictionaries(
            {
                **{k: st.just(v) for k, v in record.items()},
                "prompt_id": st.one_of(st.sampled_from(["@0", "@1"]), json_values),
            }
        ),
    )
)


def _with_stored_ids(data: bytes, stored: list[int]) -> bytes:
    return data.replace(b'"@0"', str(stored[0]).encode()).replace(b'"@1"', str(stored[1]).encode())


@FUZZ
@given(data=files(st.lists(json_lines(completion_records), max_size=5)))
def test_a_completions_file_imports_or_is_rejected_naming_the_line(data):
    with _rolled_back():
        stored_prompts = [PromptFactory(text=f"A stored prompt, number {n}.") for n in range(2)]
        stored = {p.dedup_key: p.pk for p in stored_prompts}
        data = _with_stored_ids(data, list(stored.values()))
        before = _counts()
        try:
            result = completions_import(file=io.BytesIO(data), batch={"name": "fuzzed", "kind": "ranking"})
        except ImportRejected as exc:
            _assert_rejected_cleanly(exc, data, before, COMPLETION_FIELDS)
            return
        event("imported")
        records = [json.loads(line) for line in _lines(data) if line.strip()]
        assert result.lines == len(records)

        def prompt_of(record) -> object:
            """A stored prompt's id, or the dedup key of a prompt this file creates."""
            if "prompt_id" in record:
                return record["prompt_id"]
            key = dedup_key(record["prompt"].strip())
            return stored.get(key, key)

        groups = {(prompt_of(r), r["model"], frozenset(r["completions"])) for r in records}
        outputs = {(p, model, text) for p, model, texts in groups for text in texts}
        new_prompts = {p for p, _, _ in groups if isinstance(p, str)}
        after = _counts()
        assert after["Prompt"] - before["Prompt"] == len(new_prompts)
        assert after["Completion"] - before["Completion"] == len(outputs)
        assert result.tasks_created == len(groups) == after["Task"] - before["Task"]
        made = {
            (
                task.prompt_id if task.prompt_id in stored.values() else task.prompt.dedup_key,
                {tc.completion.source_name for tc in task.task_completions.all()}.pop(),
                frozenset(tc.completion.text for tc in task.task_completions.all()),
            )
            for task in Task.objects.filter(batch=result.batch).prefetch_related(
                "task_completions__completion"
            )
        }
        assert made == groups


# The crashes the property tests found, one plain test each: every one used to raise something else than
# ImportRejected (DataError, UnicodeEncodeError, ValueError, RecursionError) and fail the whole request.
def _rejected(data: bytes, fmt: str = "jsonl", importer=prompts_import) -> ImportRejected:
    before = _counts()
    with pytest.raises(ImportRejected) as caught:
        if importer is prompts_import:
            prompts_import(file=io.BytesIO(data), format=fmt)
        else:
            completions_import(file=io.BytesIO(data), batch={"name": "b", "kind": "ranking"})
    assert _counts() == before
    return caught.value


@pytest.mark.parametrize(
    "line, field, message",
    [
        (r'{"text": "a\u0000b", "category": "other"}', "text", "NUL character"),
        (r'{"text": "\ud800", "category": "other"}', "text", "lone surrogate"),
        (r'{"text": "x", "category": "other", "origin_user": "\u0000"}', "origin_user", "NUL character"),
        (r'{"text": "x", "category": "other", "metadata": {"\u0000": 1}}', "metadata", "NUL character"),
        (
            '{"text": "x", "category": "other", "metadata": {"a": ' + "[" * 40 + "]" * 40 + "}}",
            "metadata",
            "nested",
        ),
        ('{"text": "x", "category": "other", "metadata": {"n": NaN}}', "", "NaN is not a JSON number"),
        ('{"text": "x", "category": "other", "metadata": {"n": 1e999}}', "", "out of range"),
        ('{"text": 1' + "0" * 5000 + ', "category": "other"}', "", "5001 digits"),
        ("[" * 50_000 + "]" * 50_000, "", "nested too deeply"),
    ],
)
def test_a_prompts_line_the_database_cannot_store_is_rejected_by_line_and_field(line, field, message):
    data = b'{"text": "A fine first line.", "category": "other"}\n' + line.encode()
    error = _rejected(data).errors[0]
    assert (error.line, error.field) == (2, field) and message in error.message


def test_a_csv_cell_with_a_nul_byte_is_rejected_by_line_and_field():
    error = _rejected(b"text,category\r\nfine,other\r\nnot\x00fine,other\r\n", fmt="csv").errors[0]
    assert (error.line, error.field) == (3, "text") and "NUL character" in error.message


@pytest.mark.parametrize(
    "line, field",
    [
        (r'{"prompt": "p", "completions": ["a", "b\u0000"], "model": "m"}', "completions"),
        (r'{"prompt": "p", "completions": ["a", "b"], "model": "m\ud800"}', "model"),
        (r'{"prompt": "p\u0000", "completions": ["a", "b"], "model": "m"}', "prompt"),
    ],
)
def test_a_completions_line_the_database_cannot_store_is_rejected_by_line_and_field(line, field):
    error = _rejected(line.encode(), importer=completions_import).errors[0]
    assert (error.line, error.field) == (1, field)
