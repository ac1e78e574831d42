"""The rows of each dataset kind, read from the database in a fixed order and serialised to JSON lines.

One query per kind (`*_source`) selects plain columns. Two writers serialise it to the same bytes:
- `json_lines` (any database): a server-side cursor streams the columns and Python writes each row
  with json.dumps(sort_keys=True, ensure_ascii=False);
- `json_lines_copy` (Postgres): the same query, wrapped so that Postgres builds each line's JSON text
  itself, streamed out by `COPY ... TO STDOUT`. It is the fast path (see bench/export.py).
Postgres's to_json escapes strings exactly as json.dumps(ensure_ascii=False) does (\\" \\\\ \\b \\f \\n \\r \\t,
other control characters as \\u00XX), keys are written in sorted order, and the separators are ", "
and ": ", so both writers give identical bytes; tests/labeling/test_exports.py checks it on nasty text.

Both writers also write the conversational format (TRL's): every text in MESSAGE_ROLES becomes a list of
one chat message, {"content": text, "role": role}; rm_rankings' completions become one such list each.
"""

import hashlib
import hmac
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection

CHUNK_ROWS = 2000
BLOCK_BYTES = 1 << 20
# The conversational format: who speaks each text (keys absent from a kind are passed over).
MESSAGE_ROLES = {
    "prompt": "user",
    "completion": "assistant",
    "chosen": "assistant",
    "rejected": "assistant",
    "completions": "assistant",
}


def labeler_pseudonym(user_id: int | None) -> str | None:
    """A stable pseudonym of a labeler: HMAC-SHA256 of the user id keyed by SECRET_KEY, truncated."""
    if user_id is None:
        return None
    digest = hmac.new(settings.SECRET_KEY.encode(), f"labeler:{user_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ExportFilters:
    """Clean filters (see labeling.services.export_filters.filters_clean)."""

    batches: Sequence[int] = ()
    split: Sequence[str] = ()
    category: Sequence[str] = ()
    created_after: datetime | None = None
    created_before: datetime | None = None
    labelers: Sequence[int] = ()
    include_pii: bool = False
    task_ids: Sequence[int] | None = None  # from the minimum-agreement hook


@dataclass(frozen=True)
class Column:
    key: str  # the JSON key
    name: str  # the column of the source query
    # str | int | bool | object (a JSON object) | list | object_list (of JSON objects) | pseudonym (a user id
    # written as its pseudonym); str also writes any value JSON knows as it is
    type: str = "str"


@dataclass
class Source:
    sql: str
    params: list
    columns: list[Column]  # sorted by key
    order_by: list[str]
    group_by: list[str] = field(default_factory=list)  # rm_rankings: one line per ranking
    lists: list[Column] = field(default_factory=list)  # rm_rankings: per-completion values, by position
    batch: str | None = None  # the query's column naming the batch a row's label came from (not exported)


def _in(column: str, values: Sequence, conds: list[str], params: list) -> None:
    if connection.vendor == "postgresql":
        conds.append(f"{column} = ANY(%s)")
        params.append(list(values))
    else:
        conds.append(f"{column} IN ({', '.join(['%s'] * len(values))})")
        params.extend(values)


def _where(
    f: ExportFilters, *, batch: str | None, labeler: str, created: str, task: str | None
) -> tuple[str, list]:
    conds: list[str] = []
    params: list = []
    if f.batches:
        if batch is None:  # prompts: those that have a task in the batches
            conds.append(
                "p.id IN (SELECT bt.prompt_id FROM labeling_task bt WHERE bt.prompt_id IS NOT NULL AND "
                + (
                    "bt.batch_id = ANY(%s))"
                    if connection.vendor == "postgresql"
                    else f"bt.batch_id IN ({', '.join(['%s'] * len(f.batches))}))"
                )
            )
            params.extend([list(f.batches)] if connection.vendor == "postgresql" else f.batches)
        else:
            _in(batch, f.batches, conds, params)
    if f.split:
        _in("p.split", f.split, conds, params)
    if f.category:
        _in("p.category", f.category, conds, params)
    if f.created_after is not None:
        conds.append(f"{created} >= %s")
        params.append(connection.ops.adapt_datetimefield_value(f.created_after))
    if f.created_before is not None:
        conds.append(f"{created} < %s")
        params.append(connection.ops.adapt_datetimefield_value(f.created_before))
    if f.labelers:
        _in(labeler, f.labelers, conds, params)
    if not f.include_pii:
        conds.append("NOT p.pii_flag")
    if f.task_ids is not None and task is not None:
        if f.task_ids:
            _in(task, f.task_ids, conds, params)
        else:
            conds.append("1 = 0")
    return (" WHERE " + " AND ".join(conds)) if conds else "", params


def _sorted(*columns: Column) -> list[Column]:
    return sorted(columns, key=lambda c: c.key)


def sft_source(f: ExportFilters) -> Source:
    where, params = _where(
        f, batch="a.batch_id", labeler="d.author_id", created="d.created_at", task="a.task_id"
    )
    sql = (
        "SELECT d.id AS demonstration_id, d.prompt_id, a.task_id, a.batch_id, d.author_id AS labeler_id, p.split,"
        " p.text AS prompt, d.text AS completion"
        " FROM labeling_demonstration d JOIN labeling_prompt p ON p.id = d.prompt_id"
        " LEFT JOIN labeling_assignment a ON a.id = d.assignment_id" + where
    )
    columns = _sorted(
        Column("prompt", "prompt"),
        Column("completion", "completion"),
        Column("prompt_id", "prompt_id", "int"),
        Column("task_id", "task_id", "int"),
        Column("demonstration_id", "demonstration_id", "int"),
        Column("labeler", "labeler_id", "pseudonym"),
        Column("split", "split"),
    )
    return Source(sql, params, columns, ["demonstration_id"], batch="batch_id")


def prompts_source(f: ExportFilters) -> Source:
    where, params = _where(f, batch=None, labeler="p.author_id", created="p.created_at", task=None)
    sql = "SELECT p.id AS prompt_id, p.text AS prompt, p.split, p.category FROM labeling_prompt p" + where
    columns = _sorted(
        Column("prompt", "prompt"),
        Column("prompt_id", "prompt_id", "int"),
        Column("split", "split"),
        Column("category", "category"),
    )
    return Source(sql, params, columns, ["prompt_id"])


def rm_pairs_source(f: ExportFilters) -> Source:
    """One line per comparison; a ranking's comparisons have consecutive ids, so they stay together."""
    where, params = _where(
        f, batch="c.batch_id", labeler="c.labeler_id", created="r.created_at", task="r.task_id"
    )
    sql = (
        "SELECT c.id AS comparison_id, c.prompt_id, r.task_id, c.ranking_id, c.batch_id, c.labeler_id, p.split,"
        " c.better_id AS chosen_id, c.worse_id AS rejected_id, p.text AS prompt, cb.text AS chosen, cw.text AS rejected"
        " FROM labeling_comparison c JOIN labeling_ranking r ON r.id = c.ranking_id"
        " JOIN labeling_prompt p ON p.id = c.prompt_id"
        " JOIN labeling_completion cb ON cb.id = c.better_id JOIN labeling_completion cw ON cw.id = c.worse_id"
        + where
    )
    columns = _sorted(
        Column("prompt", "prompt"),
        Column("chosen", "chosen"),
        Column("rejected", "rejected"),
        Column("chosen_id", "chosen_id", "int"),
        Column("rejected_id", "rejected_id", "int"),
        Column("prompt_id", "prompt_id", "int"),
        Column("task_id", "task_id", "int"),
        Column("ranking_id", "ranking_id", "int"),
        Column("labeler", "labeler_id", "pseudonym"),
        Column("split", "split"),
    )
    return Source(sql, params, columns, ["comparison_id"], batch="batch_id")


_RANKING_ITEMS = (
    "SELECT r.id AS ranking_id, r.task_id, t.prompt_id, t.batch_id, r.labeler_id, p.split, p.text AS prompt,"
    " r.comment, r.all_unusable, tc.position, tc.completion_id, cm.text AS completion, rt.tier, rt.likert,"
    " rt.flags"
    " FROM labeling_ranking r JOIN labeling_task t ON t.id = r.task_id"
    " JOIN labeling_prompt p ON p.id = t.prompt_id"
    " JOIN labeling_taskcompletion tc ON tc.task_id = r.task_id"
    " JOIN labeling_completion cm ON cm.id = tc.completion_id"
    " JOIN labeling_rating rt ON rt.ranking_id = r.id AND rt.completion_id = tc.completion_id"
)
# What a ranking says beyond its order, on every line that carries the ranking.
_RANKING_EXTRAS = (
    Column("comment", "comment"),
    Column("all_unusable", "all_unusable", "bool"),
    Column("prompt", "prompt"),
    Column("prompt_id", "prompt_id", "int"),
    Column("task_id", "task_id", "int"),
    Column("ranking_id", "ranking_id", "int"),
    Column("labeler", "labeler_id", "pseudonym"),
    Column("split", "split"),
)


def _ranking_where(f: ExportFilters) -> tuple[str, list]:
    return _where(f, batch="t.batch_id", labeler="r.labeler_id", created="r.created_at", task="r.task_id")


def ranking_items_source(f: ExportFilters, *, by_task: bool = False) -> Source:
    """One row per (ranking, completion of its task), in task position order: the rankings' raw data.
    As an export (rm_rankings), one line per ranking with its per-completion values as lists."""
    where, params = _ranking_where(f)
    lists = [
        Column("completions", "completion", "list"),
        Column("ranks", "tier", "list"),
        Column("completion_ids", "completion_id", "list"),
        Column("likert", "likert", "list"),
        Column("flags", "flags", "object_list"),
    ]
    order = ["task_id", "ranking_id", "position"] if by_task else ["ranking_id", "position"]
    return Source(
        _RANKING_ITEMS + where,
        params,
        _sorted(*_RANKING_EXTRAS),
        order,
        group_by=["ranking_id"],
        lists=lists,
        batch="batch_id",
    )


def ratings_source(f: ExportFilters) -> Source:
    """One line per (ranking, completion): the completion's Likert score, flags and rank (0 is the best),
    with the ranking's comment and all-unusable mark."""
    where, params = _ranking_where(f)
    columns = _sorted(
        *_RANKING_EXTRAS,
        Column("completion", "completion"),
        Column("completion_id", "completion_id", "int"),
        Column("rank", "tier", "int"),
        Column("likert", "likert", "int"),
        Column("flags", "flags", "object"),
    )
    return Source(_RANKING_ITEMS + where, params, columns, ["ranking_id", "position"], batch="batch_id")


def stream_rows(source: Source) -> Iterator[dict]:
    """The source's rows as dicts of columns, in order, through a server-side cursor (constant memory)."""
    sql = f"SELECT * FROM ({source.sql}) AS r ORDER BY " + ", ".join(f"r.{c}" for c in source.order_by)
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, source.params)
        names = [d[0] for d in cursor.description]
        while rows := cursor.fetchmany(CHUNK_ROWS):
            for row in rows:
                yield dict(zip(names, row, strict=True))


def batch_rows(source: Source) -> dict[int | None, int]:
    """How many lines of the source's export came from each batch (None: labels from no batch, such as
    imported demonstrations; every line, for a source whose rows have no batch)."""
    if source.batch is None:
        sql = f"SELECT NULL, COUNT(*) FROM ({source.sql}) AS r"
    else:
        lines = f"COUNT(DISTINCT r.{source.group_by[0]})" if source.group_by else "COUNT(*)"
        sql = f"SELECT r.{source.batch}, {lines} FROM ({source.sql}) AS r GROUP BY r.{source.batch}"
    with connection.cursor() as cursor:
        cursor.execute(sql, source.params)
        return {batch: count for batch, count in cursor.fetchall() if count}


def _object(raw: Any) -> Any:
    """A JSON column's value: psycopg hands Django's connection jsonb as text (Django parses it itself)."""
    return json.loads(raw) if isinstance(raw, str | bytes) else raw


def _value(column: Column, raw: Any) -> Any:
    if column.type == "pseudonym":
        return labeler_pseudonym(raw)
    if column.type == "bool":
        return None if raw is None else bool(raw)  # SQLite answers 0 or 1
    if column.type == "object":
        return _object(raw)
    return raw


def _item(column: Column, raw: Any) -> Any:
    return _object(raw) if column.type == "object_list" else raw


def rows_of(source: Source) -> Iterator[dict]:
    """The source's JSON objects (keys as exported), one per line of the dataset."""
    if not source.group_by:
        for row in stream_rows(source):
            yield {c.key: _value(c, row[c.name]) for c in source.columns}
        return
    for _, items in groupby(stream_rows(source), key=lambda row: tuple(row[g] for g in source.group_by)):
        group = list(items)
        out = {c.key: _value(c, group[0][c.name]) for c in source.columns}
        out.update({c.key: [_item(c, item[c.name]) for item in group] for c in source.lists})
        yield out


def _messages(text: str, role: str) -> list[dict]:
    return [{"content": text, "role": role}]


def as_conversation(obj: dict) -> dict:
    """The row in the conversational format: its texts as chat messages, every other key as it was."""
    out = dict(obj)
    for key, role in MESSAGE_ROLES.items():
        if key in out:
            value = out[key]
            out[key] = (
                [_messages(v, role) for v in value] if isinstance(value, list) else _messages(value, role)
            )
    return out


def json_line(obj: dict) -> bytes:
    return (json.dumps(obj, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")


def json_lines(source: Source, *, conversational: bool = False) -> Iterator[bytes]:
    """The generic writer: any database."""
    for obj in rows_of(source):
        yield json_line(as_conversation(obj) if conversational else obj)


def _messages_expr(text: str, role: str) -> str:
    """SQL building _messages' JSON text (keys sorted, json.dumps's separators) around a JSON string."""
    return f"""'[{{"content": ' || {text} || ', "role": "{role}"}}]'"""


def _object_expr(value: str) -> str:
    """SQL writing a jsonb object as json.dumps(sort_keys=True) does: keys in code point order (jsonb's own
    text puts shorter keys first). Its values are written as jsonb writes them: Rating.flags holds only
    true and false (labeling.ranking_rules)."""
    pairs = "to_json(j.k)::text || ': ' || j.v::text"
    return (
        f"('{{' || COALESCE((SELECT string_agg({pairs}, ', ' ORDER BY j.k COLLATE \"C\")"
        f" FROM jsonb_each({value}) AS j(k, v)), '') || '}}')"
    )


def _json_expr(column: Column, role: str | None = None) -> str:
    if column.type == "pseudonym":
        return "COALESCE(to_json(pseudo.name)::text, 'null')"
    if column.type == "int":
        return f"COALESCE(r.{column.name}::text, 'null')"
    if column.type == "object":
        return f"COALESCE({_object_expr(f'r.{column.name}')}, 'null')"
    if column.type in ("list", "object_list"):
        item = _object_expr("e") if column.type == "object_list" else "COALESCE(to_json(e)::text, 'null')"
        item = item if role is None else _messages_expr(item, role)
        return (
            f"COALESCE((SELECT '[' || string_agg({item}, ', ' ORDER BY i) || ']'"
            f" FROM unnest(r.{column.key}) WITH ORDINALITY AS u(e, i)), '[]')"
        )
    text = f"COALESCE(to_json(r.{column.name})::text, 'null')"
    return text if role is None else _messages_expr(text, role)


def json_lines_copy(source: Source, *, conversational: bool = False) -> Iterator[bytes]:
    """The Postgres writer: the same bytes as json_lines, built by Postgres and streamed by COPY."""
    columns = sorted(source.columns + source.lists, key=lambda c: c.key)
    roles = MESSAGE_ROLES if conversational else {}
    pieces = [("{" if i == 0 else ", ") + json.dumps(c.key) + ": " for i, c in enumerate(columns)]
    text = (
        " || ".join(
            f"'{piece}' || {_json_expr(c, roles.get(c.key))}"
            for piece, c in zip(pieces, columns, strict=True)
        )
        + " || '}'"
    )
    inner = source.sql
    order = ", ".join(f"r.{c}" for c in source.order_by)
    if source.group_by:  # rm_rankings: one line per ranking, its per-completion values by task position
        aggregates = ", ".join(f"array_agg(s.{c.name} ORDER BY s.position) AS {c.key}" for c in source.lists)
        keep = ", ".join(
            sorted(f"s.{name}" for name in {c.name for c in source.columns} | set(source.group_by))
        )
        inner = f"SELECT {keep}, {aggregates} FROM ({source.sql}) AS s GROUP BY {keep}"
        order = ", ".join(f"r.{c}" for c in source.group_by)
    join, params = "", list(source.params)
    pseudonym = next((c for c in columns if c.type == "pseudonym"), None)
    if pseudonym is not None:  # pseudonyms are keyed by SECRET_KEY, so Python computes them for every user
        users = list(get_user_model().objects.order_by("pk").values_list("pk", flat=True))
        join = (
            " LEFT JOIN unnest(%s::bigint[], %s::text[]) AS pseudo(id, name)"
            f" ON pseudo.id = r.{pseudonym.name}"
        )
        params += [users, [labeler_pseudonym(u) for u in users]]
    # CSV with control characters as delimiter and quote: Postgres's JSON text never holds them raw (it
    # escapes every character below 0x20), so COPY writes each line's JSON text exactly, nothing quoted.
    sql = (
        f"COPY (SELECT {text} FROM ({inner}) AS r{join} ORDER BY {order})"
        " TO STDOUT (FORMAT csv, DELIMITER E'\\x02', QUOTE E'\\x01')"
    )
    block = bytearray()
    with connection.cursor() as cursor, cursor.cursor.copy(sql, params) as copy:
        for chunk in copy:  # one row per chunk: handed on in blocks of about 1 MiB
            block += chunk
            if len(block) >= BLOCK_BYTES:
                yield bytes(block)
                block.clear()
    if block:
        yield bytes(block)
