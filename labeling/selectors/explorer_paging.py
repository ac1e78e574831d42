"""Keyset (seek) pages by id, newest first, and a count that never counts a million rows.

A page after id X reads `WHERE id < X ORDER BY id DESC LIMIT n` down the primary key, so the oldest page
costs what the newest does (OFFSET would read and drop every row before it). `?before=0` is the oldest
page. Our own code rather than DRF's CursorPagination: that one needs a DRF request and writes opaque
cursors, where these pages want plain, bookmarkable `?after=` and `?before=` ids, and a last page.
"""

from dataclasses import dataclass
from typing import Any

from django.db import connection
from django.db.models import QuerySet

PAGE_SIZE = 50
COUNT_CAP = 500  # a filtered list is counted up to here, then shown as "more than"


@dataclass(frozen=True)
class Page:
    rows: list[Any]
    newer: int | None  # ?before= of the next newer page; None on the newest page
    older: int | None  # ?after= of the next older page; None on the oldest page

    @property
    def newest(self) -> bool:
        return self.newer is None


def keyset_page(qs: QuerySet, *, after: int | None = None, before: int | None = None, size: int = 0) -> Page:
    """The page of `qs` just older than id `after`, or just newer than id `before`, or the newest."""
    size = size or PAGE_SIZE
    if before is not None:
        rows = list(qs.filter(pk__gt=before).order_by("pk")[: size + 1])
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        if more_newer or len(rows) == size:
            older = rows[-1].pk if rows and before > 0 else None
            return Page(rows, rows[0].pk if more_newer else None, older)
        # A short page at the newest end: show the full newest page instead.
        return keyset_page(qs, size=size)
    if after is not None:
        qs = qs.filter(pk__lt=after)
    rows = list(qs.order_by("-pk")[: size + 1])
    older = rows[size - 1].pk if len(rows) > size else None
    rows = rows[:size]
    return Page(rows, rows[0].pk if after is not None and rows else None, older)


@dataclass(frozen=True)
class CountHint:
    """How many rows a list holds, as far as it is cheap to know."""

    value: int
    estimate: bool = False  # the planner's statistics, for a whole table
    more: bool = False  # at least `value`, counted no further

    def __str__(self) -> str:
        if self.estimate:
            return f"about {self.value:,}"
        return f"more than {self.value:,}" if self.more else f"{self.value:,}"


def table_estimate(table: str) -> int | None:
    """Postgres' estimate of a table's rows (pg_class.reltuples, kept by ANALYZE and autovacuum); None
    elsewhere or before the table was ever analysed."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass(%s)", [table])
        row = cursor.fetchone()
    return int(row[0]) if row and row[0] is not None and row[0] >= 0 else None


def count_hint(qs: QuerySet, *, whole_table: bool) -> tuple[CountHint, list[int] | None]:
    """How many rows `qs` holds, and, when they are at most COUNT_CAP, their ids.

    An unfiltered list of a big table: the planner's estimate. Otherwise the matching ids are read up to
    COUNT_CAP + 1, in no order, so the planner may start from the most selective index (a search, a rare
    category); when that is all of them, the view pages over those ids alone instead of walking the primary
    key down a million rows that do not match."""
    if whole_table:
        estimate = table_estimate(qs.model._meta.db_table)
        if estimate is not None and estimate > COUNT_CAP:
            return CountHint(estimate, estimate=True), None
    ids = list(qs.order_by().values_list("pk", flat=True)[: COUNT_CAP + 1])
    if len(ids) > COUNT_CAP:
        return CountHint(COUNT_CAP, more=True), None
    return CountHint(len(ids)), ids
