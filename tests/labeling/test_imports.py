"""Imports: prompts (JSONL, CSV) and completions (JSONL); hygiene, whole-file rejection, idempotence."""

import io
import json

import pytest

from labeling.models import Batch, Completion, Prompt, Task
from labeling.services.imports import ImportRejected, completions_import, prompts_import
from labeling.services.prompts import split_for
from tests.factories import PromptFactory

pytestmark = pytest.mark.django_db


def jsonl(*rows) -> io.BytesIO:
    return io.BytesIO(b"".join((json.dumps(r, ensure_ascii=False) + "\n").encode() for r in rows))


def prompt_rows(n, origin="alice"):
    return [
        {
            "text": f"Question {i}: how do tides work near {origin}?",
            "category": "open_qa",
            "origin_user": origin,
        }
        for i in range(n)
    ]


def test_prompts_import_once_and_a_second_time_adds_nothing():
    rows = [
        *prompt_rows(3),
        {"text": "Write a haiku about rain.", "category": "generation", "metadata": {"t": 1}},
    ]
    first = prompts_import(file=jsonl(*rows), format="jsonl")
    assert (first.lines, first.created, first.duplicates) == (4, 4, 0)
    again = prompts_import(file=jsonl(*rows), format="jsonl")
    assert (again.created, again.duplicates) == (0, 4) and Prompt.objects.count() == 4
    haiku = Prompt.objects.get(text="Write a haiku about rain.")
    assert (
        haiku.source == "imported" and haiku.metadata == {"t": 1} and haiku.origin_user.startswith("prompt:")
    )
    assert set(Prompt.objects.filter(origin_user="alice").values_list("split", flat=True)) == {
        split_for("alice")
    }


def test_a_long_common_prefix_is_a_duplicate(settings):
    settings.PROMPT_DEDUP_PREFIX_CHARS = 20
    result = prompts_import(
        file=jsonl(
            {"text": "Tell me a story about a dragon", "category": "generation"},
            {"text": "Tell me a story about a  DRAGON who sings", "category": "generation"},
        ),
        format="jsonl",
    )
    assert (result.created, result.duplicates) == (1, 1)


def test_at_most_n_prompts_per_origin_user(settings):
    settings.PROMPTS_PER_ORIGIN_USER = 3
    PromptFactory(origin_user="bob")
    result = prompts_import(file=jsonl(*prompt_rows(4, "bob"), *prompt_rows(2, "carol")), format="jsonl")
    assert (result.created, result.capped) == (4, 2)
    assert Prompt.objects.filter(origin_user="bob").count() == 3


def test_pii_is_flagged_or_scrubbed_as_asked():
    row = {"text": "Email jane.doe@example.com or call 555-123-4567 about my order", "category": "other"}
    flagged = prompts_import(file=jsonl(row), format="jsonl")
    assert flagged.pii_flagged == 1 and Prompt.objects.get().pii_flag
    Prompt.objects.all().delete()
    scrubbed = prompts_import(file=jsonl(row), format="jsonl", pii="scrub")
    prompt = Prompt.objects.get()
    assert scrubbed.pii_scrubbed == 1 and not prompt.pii_flag
    assert prompt.text == "Email [EMAIL] or call [PHONE] about my order"
    assert prompt.metadata == {"pii_scrubbed": ["email", "phone"]}


def test_csv_prompts_with_quoted_newlines_and_metadata():
    data = (
        b'text,category,origin_user,metadata\n"Line one\nline two, with a comma",rewrite,u1,"{""a"": 1}"\n'
        b"Plain prompt,chat,,\n"
    )
    result = prompts_import(file=io.BytesIO(data), format="csv")
    assert result.created == 2
    assert Prompt.objects.get(category="rewrite").text == "Line one\nline two, with a comma"
    assert Prompt.objects.get(category="rewrite").metadata == {"a": 1}


def test_a_bad_file_is_rejected_whole_with_line_and_field():
    rows = [
        *prompt_rows(2),
        {"text": "", "category": "open_qa"},
        {"text": "x", "category": "poetry"},
        {"text": "y", "category": "chat", "colour": "red"},
    ]
    data = (
        jsonl(*rows).getvalue() + b"{not json\n" + b'"a string"\n' + b'{"text": "\xff", "category": "chat"}\n'
    )
    with pytest.raises(ImportRejected) as err:
        prompts_import(file=io.BytesIO(data), format="jsonl")
    errors = [(e.line, e.field) for e in err.value.errors]
    assert errors == [(3, "text"), (4, "category"), (5, "colour"), (6, ""), (7, ""), (8, "")]
    assert "line 3: text:" in err.value.message and err.value.as_dict()["error_count"] == 6
    assert Prompt.objects.count() == 0


def test_a_bad_csv_header_is_named():
    with pytest.raises(ImportRejected) as err:
        prompts_import(file=io.BytesIO(b"prompt,kind\nhello,chat\n"), format="csv")
    assert err.value.errors[0].line == 1 and "missing: text, category" in err.value.errors[0].message


def test_a_demonstration_batch_from_the_imported_prompts(labeler):
    result = prompts_import(
        file=jsonl(*prompt_rows(3)),
        format="jsonl",
        demonstration_batch={"name": "demos from file", "labelers": [labeler], "overlap": 2},
    )
    assert result.batch.kind == "demonstration" and result.batch.tasks.count() == 3
    again = prompts_import(file=jsonl(*prompt_rows(3)), format="jsonl", demonstration_batch={"name": "again"})
    assert again.batch is None and Batch.objects.count() == 1


def completion_rows():
    existing = PromptFactory(text="Existing prompt about volcanoes")
    return existing, [
        {
            "prompt": "Explain photosynthesis to a child.",
            "completions": ["Plants eat light.", "Sunlight + water = sugar."],
            "model": "vllm-llama",
            "category": "open_qa",
        },
        {"prompt_id": existing.pk, "completions": ["a", "b", "c", "d"], "model": "api-model"},
    ]


def test_completions_import_makes_a_ranking_batch_and_is_idempotent():
    existing, rows = completion_rows()
    result = completions_import(file=jsonl(*rows), batch={"name": "imported outputs", "overlap": 2})
    assert (result.prompts_created, result.completions_created, result.tasks_created) == (1, 6, 2)
    batch = result.batch
    assert batch.kind == "ranking" and batch.overlap == 2
    task = Task.objects.get(batch=batch, prompt=existing)
    assert task.k == 4 and [tc.completion.text for tc in task.task_completions.all()] == ["a", "b", "c", "d"]
    assert set(Completion.objects.filter(prompt=existing).values_list("source_name", flat=True)) == {
        "api-model"
    }
    again = completions_import(file=jsonl(*rows, rows[0]), batch={"name": "again"})
    assert again.batch is None and again.already_imported == 3 and Batch.objects.count() == 1


@pytest.mark.parametrize(
    "row, field, words",
    [
        ({"prompt": "p", "completions": ["only one"], "model": "m"}, "completions", "2 to 9 items, got 1"),
        ({"prompt": "p", "completions": [str(i) for i in range(11)], "model": "m"}, "completions", "got 11"),
        ({"prompt": "p", "completions": ["a", "a"], "model": "m"}, "completions", "twice"),
        ({"prompt": "p", "completions": ["a", "b"]}, "model", "required"),
        ({"prompt": "p", "prompt_id": 1, "completions": ["a", "b"], "model": "m"}, "prompt", "either"),
        ({"prompt_id": 987654, "completions": ["a", "b"], "model": "m"}, "prompt_id", "does not exist"),
    ],
)
def test_bad_completion_lines_name_line_and_field(row, field, words):
    good = {"prompt": "fine", "completions": ["x", "y"], "model": "m"}
    with pytest.raises(ImportRejected) as err:
        completions_import(file=jsonl(good, row), batch={"name": "b"})
    assert (err.value.errors[0].line, err.value.errors[0].field) == (2, field)
    assert words in err.value.errors[0].message
    assert Completion.objects.count() == 0 and Batch.objects.count() == 0


@pytest.mark.slow
def test_a_large_file_imports_in_one_go(settings):
    settings.PROMPTS_PER_ORIGIN_USER = 10_000
    n = 5000
    rows = (
        {
            "text": f"Prompt {i} about topic {i * 7919 % 10007}",
            "category": "generation",
            "origin_user": f"u{i % 50}",
        }
        for i in range(n)
    )
    result = prompts_import(file=jsonl(*rows), format="jsonl")
    assert result.created == n and Prompt.objects.count() == n


class ReadSpy(io.BytesIO):
    """A file that remembers the longest piece any read handed out: what reading held in memory at once."""

    longest = 0

    def _seen(self, piece: bytes) -> bytes:
        self.longest = max(self.longest, len(piece))
        return piece

    def read(self, size=-1):
        return self._seen(super().read(size))

    def readline(self, size=-1):
        return self._seen(super().readline(size))

    def __next__(self):
        return self._seen(super().__next__())


def test_a_line_over_the_limit_is_refused_by_number_without_being_read_whole(settings):
    settings.IMPORT_MAX_LINE_BYTES = 1024
    huge = json.dumps({"text": "x" * 3_000_000, "category": "chat"}).encode()
    data = ReadSpy(
        jsonl(*prompt_rows(1)).getvalue()
        + huge
        + b"\n"
        + jsonl(*prompt_rows(1, "bob"), {"text": "after it", "category": "nope"}).getvalue()
    )
    with pytest.raises(ImportRejected) as err:
        prompts_import(file=data, format="jsonl")
    assert [(e.line, e.field) for e in err.value.errors] == [(2, ""), (4, "category")]  # read on past it
    assert "line 2: is longer than 1,024 bytes (the limit per line, IMPORT_MAX_LINE_BYTES)" in str(
        err.value.errors[0]
    )
    assert data.longest <= 64 * 1024  # skipped in pieces, never held whole
    assert Prompt.objects.count() == 0


@pytest.mark.parametrize("extra, refused", [(0, False), (1, True)])
def test_the_line_limit_counts_the_bytes_of_a_line_without_its_newline(settings, extra, refused):
    line = json.dumps({"text": "é" * 40, "category": "chat"}).encode()
    settings.IMPORT_MAX_LINE_BYTES = len(line) - extra
    for data in (line + b"\n", line):  # with its newline, or last in the file without one
        Prompt.objects.all().delete()
        if refused:
            with pytest.raises(ImportRejected, match="line 1: is longer than"):
                prompts_import(file=io.BytesIO(data), format="jsonl")
        else:
            assert prompts_import(file=io.BytesIO(data), format="jsonl").created == 1


def test_a_csv_line_over_the_limit_is_refused_by_number(settings):
    settings.IMPORT_MAX_LINE_BYTES = 100
    data = ReadSpy(b"text,category\nfine,chat\n" + b'"' + b"y" * 500_000 + b'",chat\nlast,chat\n')
    with pytest.raises(ImportRejected) as err:
        prompts_import(file=data, format="csv")
    assert [e.line for e in err.value.errors] == [3] and "longer than 100 bytes" in err.value.message
    assert data.longest <= 64 * 1024 and Prompt.objects.count() == 0


def test_a_completions_line_over_the_limit_is_refused_by_number(settings):
    settings.IMPORT_MAX_LINE_BYTES = 200
    good = {"prompt": "fine", "completions": ["x", "y"], "model": "m"}
    long = {"prompt": "long", "completions": ["a" * 300, "b"], "model": "m"}
    with pytest.raises(ImportRejected) as err:
        completions_import(file=jsonl(good, long, good), batch={"name": "b"})
    assert [(e.line, e.field) for e in err.value.errors] == [(2, "")]
    assert Completion.objects.count() == 0 and Batch.objects.count() == 0


def test_a_missing_prompt_id_is_reported_with_the_other_lines_errors_in_one_answer():
    """One pass reports every error of a file (before, a missing prompt showed only once the rest was fixed)."""
    rows = [
        {"prompt": "fine", "completions": ["x"], "model": "m"},
        {"prompt_id": 987654, "completions": ["a", "b"], "model": "m"},
        {"prompt": "p", "completions": ["a", "b"]},
    ]
    with pytest.raises(ImportRejected) as err:
        completions_import(file=jsonl(*rows), batch={"name": "b"})
    found = [(e.line, e.field) for e in err.value.errors]
    assert found == [(1, "completions"), (2, "prompt_id"), (3, "model")] and err.value.total == 3
