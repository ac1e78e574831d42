"""Benchmark of the rm_pairs export against Postgres's own COPY of the same rows (not a test).

Creates its own database (loopwork_bench on the server of DATABASE_URL) and fills it with SQL
(generate_series, no ORM per row): with the default --comparisons 1,000,000 that is 50,000 prompts with
5 completions each (K=5, so 10 comparisons per ranking), 100,000 rankings (2 per task) by 20 labelers,
500,000 ratings and 1,000,000 comparisons. Then it times, best of --repeat runs:
  - the export as a researcher starts it: an export job (labeling.services.jobs.job_start_export,
    kind="rm_pairs"), run inline as a worker runs it: file, sha256, record, and its progress written
    every JOB_PROGRESS_SECONDS;
  - the reference: COPY (SELECT <the same columns, same joins, same order>) TO STDOUT into a file;
and prints rows/s, peak RSS, both times and a last line `ratio: <export time / COPY time>`.
Targets: ratio at most 2.0, peak RSS under 300 MB. The database is dropped at the end (--keep keeps it).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/export.py
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
K = 5  # completions per task: C(5, 2) = 10 comparisons per ranking
RANKINGS_PER_TASK = 2
LABELERS = 20


def server_url(database: str) -> str:
    parts = urlsplit(os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"))
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, ""))


def recreate(name: str, *, drop_only: bool = False) -> None:
    import psycopg

    with psycopg.connect(
        server_url("postgres").replace("postgres://", "postgresql://", 1), autocommit=True
    ) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def insert_select(model, values: dict[str, str], source: str) -> None:
    """INSERT INTO model's table (columns) SELECT values FROM source. Columns not given get the model
    field's default (so fields other issues add do not break the benchmark); nullable ones stay NULL."""
    from django.db import connection

    columns, exprs, params = list(values), list(values.values()), []
    for field in model._meta.concrete_fields:
        if field.column in values or field.primary_key or field.null:
            continue
        columns.append(field.column)
        exprs.append("%s")
        params.append(field.get_db_prep_save(field.get_default(), connection))
    given = [expr.replace("%", "%%") for expr in exprs[: len(values)]]  # modulo, not a placeholder
    sql = (
        f"INSERT INTO {model._meta.db_table} ({', '.join(columns)})"
        f" SELECT {', '.join(given + exprs[len(values) :])} FROM {source.replace('%', '%%')}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def fill(comparisons: int) -> None:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from labeling.models import (
        Assignment,
        Batch,
        Comparison,
        Completion,
        Prompt,
        Ranking,
        Rating,
        Task,
        TaskCompletion,
    )

    with connection.cursor() as cursor:  # a bulk load: foreign-key triggers off while filling (superuser)
        cursor.execute("SET session_replication_role = replica")
    rankings = comparisons // (K * (K - 1) // 2)
    tasks = -(-rankings // RANKINGS_PER_TASK)
    User = get_user_model()
    users = [User.objects.create(username=f"bench-labeler-{i}") for i in range(LABELERS)]
    first_user = users[0].pk
    batch = Batch.objects.create(name="bench", kind="ranking", status="active", overlap=RANKINGS_PER_TASK)
    now = "now()"
    # Texts with quotes, a backslash, a newline, a tab and non-ASCII, so JSON escaping has work to do.
    insert_select(
        Prompt,
        {
            "id": "i",
            "text": "'Prompt ' || i || ': explain \"item\" ' || md5(i::text) || E' to a child,\\nplease. Café ☕'",
            "category": "'generation'",
            "source": "'imported'",
            "origin_user": "'user-' || (i % 5000)",
            "split": "(ARRAY['train','train','train','train','train','train','train','train','valid','test'])[1 + i % 10]",
            "dedup_key": "lpad(to_hex(i), 64, '0')",
            "pii_flag": "false",
            "created_at": now,
        },
        f"generate_series(1, {tasks}) AS i",
    )
    insert_select(
        Completion,
        {
            "id": "(i - 1) * 5 + j + 1",
            "prompt_id": "i",
            "source_name": "'bench-model'",
            "created_at": now,
            "text": "'Answer ' || j || E' to prompt ' || i || ': \"quoted\", back\\\\slash,\\ttab, ' || "
            "repeat(md5((i * 10 + j)::text), 1 + j % 3) || ' — naïve façade'",
        },
        f"generate_series(1, {tasks}) AS i, generate_series(0, {K - 1}) AS j",
    )
    insert_select(
        Task,
        {"id": "i", "batch_id": str(batch.pk), "prompt_id": "i", "k": str(K), "created_at": now},
        f"generate_series(1, {tasks}) AS i",
    )
    insert_select(
        TaskCompletion,
        {"task_id": "i", "completion_id": "(i - 1) * 5 + j + 1", "prompt_id": "i", "position": "j"},
        f"generate_series(1, {tasks}) AS i, generate_series(0, {K - 1}) AS j",
    )
    # Ranking n (1-based) is of task (n + 1) / 2 by labeler (n % 20); odd rankings keep the order, even reverse it.
    r_source = f"generate_series(1, {rankings}) AS n"
    insert_select(
        Assignment,
        {
            "id": "n",
            "task_id": "(n + 1) / 2",
            "batch_id": str(batch.pk),
            "labeler_id": f"{first_user} + n % {LABELERS}",
            "status": "'submitted'",
            "lease_expires_at": now,
            "created_at": now,
            "finished_at": now,
        },
        r_source,
    )
    insert_select(
        Ranking,
        {
            "id": "n",
            "assignment_id": "n",
            "task_id": "(n + 1) / 2",
            "labeler_id": f"{first_user} + n % {LABELERS}",
            "tiers": f"(SELECT jsonb_agg(jsonb_build_array(((n + 1) / 2 - 1) * 5 + 1 + "
            f"CASE WHEN n % 2 = 1 THEN t ELSE {K - 1} - t END) ORDER BY t) FROM generate_series(0, {K - 1}) t)",
            "all_unusable": "false",
            "comment": "''",
            "seconds_spent": "30",
            "created_at": now,
        },
        r_source,
    )
    tier = f"CASE WHEN n % 2 = 1 THEN j ELSE {K - 1} - j END"
    insert_select(
        Rating,
        {"ranking_id": "n", "completion_id": "((n + 1) / 2 - 1) * 5 + 1 + j", "tier": tier},
        f"{r_source}, generate_series(0, {K - 1}) AS j",
    )
    insert_select(
        Comparison,
        {
            "ranking_id": "n",
            "batch_id": str(batch.pk),
            "prompt_id": "(n + 1) / 2",
            "better_id": f"((n + 1) / 2 - 1) * 5 + 1 + CASE WHEN n % 2 = 1 THEN a ELSE {K - 1} - a END",
            "worse_id": f"((n + 1) / 2 - 1) * 5 + 1 + CASE WHEN n % 2 = 1 THEN b ELSE {K - 1} - b END",
            "labeler_id": f"{first_user} + n % {LABELERS}",
            "created_at": now,
        },
        f"{r_source}, generate_series(0, {K - 2}) AS a, generate_series(1, {K - 1}) AS b WHERE a < b",
    )
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = DEFAULT")
        cursor.execute("ANALYZE")


def time_reference(folder: Path) -> tuple[float, int]:
    """COPY of the same columns, joins and order as the export, in Postgres's text format, into a file."""
    from django.db import connection

    from labeling.selectors.exports import ExportFilters, rm_pairs_source

    source = rm_pairs_source(ExportFilters())
    columns = ", ".join(f"r.{c.name}" for c in source.columns)
    sql = f"COPY (SELECT {columns} FROM ({source.sql}) AS r ORDER BY r.comparison_id) TO STDOUT"
    start, size = time.perf_counter(), 0
    with open(folder / "reference.tsv", "wb") as out, connection.cursor() as cursor:
        with cursor.cursor.copy(sql, source.params) as copy:
            for chunk in copy:
                out.write(chunk)
                size += len(chunk)
    return time.perf_counter() - start, size


def time_export() -> tuple[float, object]:
    from labeling.services.jobs import job_start_export

    start = time.perf_counter()
    job = job_start_export(kind="rm_pairs", format="standard", filters={})
    elapsed = time.perf_counter() - start
    if job.status != "succeeded":
        raise SystemExit(f"the export job {job.status}: {job.message}")
    return elapsed, job.snapshot


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparisons", type=int, default=1_000_000)
    parser.add_argument("--database", default="loopwork_bench")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="time a database kept by an earlier --keep run")
    args = parser.parse_args()

    if not args.reuse:
        recreate(args.database)
    media = Path(tempfile.mkdtemp(prefix="loopwork-bench-"))
    os.environ["DATABASE_URL"] = server_url(args.database)
    os.environ["MEDIA_ROOT"] = str(media)
    os.environ["CELERY_BROKER_URL"] = ""  # the job runs in this process, as a worker would run it
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.db import connection

    settings.TASKS_INLINE = True
    try:
        call_command("migrate", verbosity=0)  # a database kept from an earlier run may lack newer tables
        if not args.reuse:
            start = time.perf_counter()
            fill(args.comparisons)
            print(f"generated {args.comparisons:,} comparisons in {time.perf_counter() - start:.1f} s (SQL)")
        time_reference(media)  # warm the cache once
        reference, exports = [], []
        for _ in range(args.repeat):
            reference.append(time_reference(media))
            exports.append(time_export())
        copy_s, copy_bytes = min(reference)
        export_s, snapshot = min(exports, key=lambda item: item[0])
        rows = snapshot.row_count
        print(
            f"export rm_pairs: {rows:,} rows, {Path(media, snapshot.file).stat().st_size / 1e6:.0f} MB, "
            f"{export_s:.2f} s, {rows / export_s:,.0f} rows/s, sha256 {snapshot.sha256[:16]}..."
        )
        print(
            f"reference COPY (SELECT ...) TO STDOUT: {copy_bytes / 1e6:.0f} MB, {copy_s:.2f} s, "
            f"{rows / copy_s:,.0f} rows/s"
        )
        print(f"peak RSS: {rss_mb():.0f} MB")
        print(f"ratio: {export_s / copy_s:.2f}")
    finally:
        connection.close()
        if not args.keep:
            recreate(args.database, drop_only=True)
        for path in sorted(media.rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        media.rmdir()


if __name__ == "__main__":
    main()
