"""Reading an import file: lines of at most IMPORT_MAX_LINE_BYTES, as UTF-8, then JSON objects or CSV records.

A line longer than the bound is never held in memory: it is refused by its number and skipped in chunks to
its end, so a single line of hundreds of megabytes costs one pass over the disk, not its size in memory
(iterating a file, or csv over it, reads each line whole first). A JSONL file goes on to its next line, so
every other error is reported too; in a CSV file a record may span lines, so reading stops there.
Python's csv module bounds each field as well (csv.field_size_limit, 131,072 characters by default).
"""

import csv
from collections.abc import Iterator
from typing import IO

from django.conf import settings

from core import storable
from core.errors import ServiceError

FORMATS = ("jsonl", "csv")
PROMPT_FIELDS = ("text", "category", "origin_user", "metadata")
SKIP_BYTES = 64 * 1024  # what skipping an overlong line reads at a time


class BadLine(Exception):
    def __init__(self, line: int, message: str) -> None:
        self.line, self.message = line, message


def _too_long(limit: int) -> str:
    return f"is longer than {limit:,} bytes (the limit per line, IMPORT_MAX_LINE_BYTES); it was not read"


def _skip_rest_of_line(file: IO[bytes]) -> None:
    while (piece := file.readline(SKIP_BYTES)) and not piece.endswith(b"\n"):
        pass


def bounded_lines(file: IO[bytes]) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) per line from the start of `file`; None in place of a line over the bound."""
    limit = settings.IMPORT_MAX_LINE_BYTES
    file.seek(0)
    number = 0
    while raw := file.readline(limit + 1):
        number += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            _skip_rest_of_line(file)
            yield number, None
        else:
            yield number, raw


def _decoded(file: IO[bytes], *, stop_at_long_line: bool) -> Iterator[tuple[int, str | None]]:
    """(line number, text); None for an overlong line (or BadLine, when it must stop the reading). A line
    that is not UTF-8 stops the reading: what follows it cannot be trusted to split the same way."""
    for number, raw in bounded_lines(file):
        if raw is None:
            if stop_at_long_line:
                raise BadLine(number, _too_long(settings.IMPORT_MAX_LINE_BYTES))
            yield number, None
            continue
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        try:
            yield number, raw.decode("utf-8")
        except UnicodeDecodeError:
            raise BadLine(number, "not valid UTF-8 text") from None


def jsonl_records(file: IO[bytes]) -> Iterator[tuple[int, dict | str]]:
    """(line number, object) per non-blank line, or (line number, error message)."""
    lines = _decoded(file, stop_at_long_line=False)
    while True:
        try:
            number, text = next(lines)
        except StopIteration:
            return
        except BadLine as bad:
            yield bad.line, bad.message
            return
        if text is None:
            yield number, _too_long(settings.IMPORT_MAX_LINE_BYTES)
            continue
        if not text.strip():
            continue
        try:
            obj = storable.loads(text)
        except ValueError as exc:
            yield number, f"not valid JSON ({exc})"
            continue
        yield number, obj if isinstance(obj, dict) else "each line must be a JSON object"


def _csv_header(header: list[str]) -> str | None:
    """The problem with the header row, or None."""
    missing = [h for h in ("text", "category") if h not in header]
    unknown = [h for h in header if h not in PROMPT_FIELDS]
    if not (missing or unknown):
        return None
    return (
        f"the header must name the columns text and category (and optionally origin_user, metadata);"
        f" missing: {', '.join(missing) or 'none'}, unknown: {', '.join(unknown) or 'none'}"
    )


def csv_records(file: IO[bytes]) -> Iterator[tuple[int, dict | str]]:
    """(line number, row) per CSV record (header: text, category, and optionally origin_user, metadata)."""
    # No None: with stop_at_long_line an overlong line raises BadLine instead.
    reader = csv.reader(text for _, text in _decoded(file, stop_at_long_line=True) if text is not None)
    try:
        header = [h.strip() for h in next(reader, [])]
        if problem := _csv_header(header):
            yield 1, problem
            return
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                yield reader.line_num, f"expected {len(header)} cells, got {len(cells)}"
                continue
            row: dict = dict(zip(header, cells, strict=True))
            if row.get("metadata", "").strip():
                try:
                    row["metadata"] = storable.loads(row["metadata"])
                except ValueError as exc:
                    yield reader.line_num, f"metadata: not valid JSON ({exc})"
                    continue
            else:
                row.pop("metadata", None)
            yield reader.line_num, row
    except BadLine as bad:
        yield bad.line, bad.message
    except csv.Error as exc:
        yield reader.line_num, f"not valid CSV ({exc})"


def records(file: IO[bytes], fmt: str) -> Iterator[tuple[int, dict | str]]:
    if fmt not in FORMATS:
        raise ServiceError(f"unknown format '{fmt}'; choose one of: {', '.join(FORMATS)}.", field="format")
    return jsonl_records(file) if fmt == "jsonl" else csv_records(file)
