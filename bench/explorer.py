"""Benchmark of the data explorer's pages over a million rankings (not a test).

Creates its own database (loopwork_bench_explorer on the server of DATABASE_URL) and fills it with SQL
(generate_series, no ORM per row): with the default --rankings 1,000,000 that is 500,000 prompts in 20
batches with 4 outputs each, 2 rankings per task by 40 labelers (the second ranking agrees, swaps the top
two or reverses the first: task agreement 100%, 83% or 0%), 4,000,000 ratings (one in 50 flagged), up to
6,000,000 comparisons and 200,000 demonstrations. Then it opens each page as a researcher through
Django's test client (query and template, best of --repeat) and prints its time and its ratio to the
newest page of rankings: the oldest page and a deep page (keyset: as cheap as the first), filters, full-text
searches and a task's page. The last line is `ratio: <the largest>`. Speed targets live here, never in
the tests. The database is dropped at the end (--keep keeps it, --reuse times a kept one).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/explorer.py
"""

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT.parent))
sys.path.insert(0, str(ROOT))
from export import insert_select, recreate, server_url  # noqa: E402  (bench/export.py: the same loading)

K = 4
LABELERS = 40
BATCHES = 20
# The second ranking of a task: the same order, the top two swapped, or reversed (all involutions, so a
# permutation is its own inverse). Tier of output j = PERMS[p][j].
PERMS = ((0, 1, 2, 3), (1, 0, 2, 3), (3, 2, 1, 0))
TOPICS = 1000  # prompt i is about "topicN", N = i % TOPICS: a search word in one prompt of a thousand


def fill(rankings: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import connection

    from labeling.models import (
        Assignment,
        Batch,
        Comparison,
        Completion,
        Demonstration,
        Prompt,
        Ranking,
        Rating,
        Task,
        TaskCompletion,
    )
    from labeling.vocab import Category

    explorer_indexes = importlib.import_module("labeling.migrations.0016_explorer")
    with connection.cursor() as cursor:  # a bulk load: foreign-key triggers off while filling (superuser)
        cursor.execute("SET session_replication_role = replica")
        for sql in explorer_indexes.BACKWARD:  # built once at the end: faster than row by row
            cursor.execute(sql)
    tasks = rankings // 2
    User = get_user_model()
    first_user = User.objects.create(username="bench-labeler-0").pk
    for i in range(1, LABELERS):
        User.objects.create(username=f"bench-labeler-{i}")
    batches = [
        Batch.objects.create(name=f"bench {b}", kind="ranking", status="active", overlap=2)
        for b in range(BATCHES)
    ]
    first_batch, now = batches[0].pk, "now()"
    categories = "ARRAY[" + ",".join(f"'{c}'" for c in Category.values) + "]"
    insert_select(
        Prompt,
        {
            "id": "i",
            "text": f"'Prompt ' || i || ': explain topic' || (i % {TOPICS}) || ' to a child, ' || md5(i::text)",
            "category": f"({categories})[1 + i % {len(Category.values)}]",
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
            "id": f"(i - 1) * {K} + j + 1",
            "prompt_id": "i",
            "source_name": "'bench-model'",
            "created_at": now,
            "text": "'Answer ' || j || ' to prompt ' || i || ': ' || md5((i * 10 + j)::text)",
        },
        f"generate_series(1, {tasks}) AS i, generate_series(0, {K - 1}) AS j",
    )
    insert_select(
        Task,
        {
            "id": "i",
            "batch_id": f"{first_batch} + i % {BATCHES}",
            "prompt_id": "i",
            "k": str(K),
            "created_at": now,
        },
        f"generate_series(1, {tasks}) AS i",
    )
    insert_select(
        TaskCompletion,
        {"task_id": "i", "completion_id": f"(i - 1) * {K} + j + 1", "prompt_id": "i", "position": "j"},
        f"generate_series(1, {tasks}) AS i, generate_series(0, {K - 1}) AS j",
    )
    # Ranking n is of task (n + 1) / 2 by labeler n % 40; odd n in order, even n by PERMS[task % 3].
    flat = ",".join(str(t) for p in PERMS for t in p)
    pattern = "(CASE WHEN n % 2 = 1 THEN 0 ELSE ((n + 1) / 2) % 3 END)"

    def perm(j: str) -> str:
        return f"(ARRAY[{flat}])[1 + {pattern} * {K} + {j}]"

    base = f"((n + 1) / 2 - 1) * {K} + 1"
    source = f"generate_series(1, {rankings}) AS n"
    labeler = f"{first_user} + n % {LABELERS}"
    insert_select(
        Assignment,
        {
            "id": "n",
            "task_id": "(n + 1) / 2",
            "batch_id": f"{first_batch} + ((n + 1) / 2) % {BATCHES}",
            "labeler_id": labeler,
            "status": "'submitted'",
            "lease_expires_at": now,
            "created_at": now,
            "finished_at": now,
        },
        source,
    )
    insert_select(
        Ranking,
        {
            "id": "n",
            "assignment_id": "n",
            "task_id": "(n + 1) / 2",
            "labeler_id": labeler,
            "tiers": f"(SELECT jsonb_agg(jsonb_build_array({base} + {perm('t')}) ORDER BY t) "
            f"FROM generate_series(0, {K - 1}) t)",
            "all_unusable": "false",
            "comment": "CASE WHEN n % 100 = 0 THEN 'output B invents a river' ELSE '' END",
            "seconds_spent": "5 + (n::bigint * 7919) % 300",
            "created_at": now,
        },
        source,
    )
    insert_select(
        Rating,
        {
            "ranking_id": "n",
            "completion_id": f"{base} + j",
            "tier": f"{perm('j')}",
            "likert": "1 + (n + j) % 7",
            "flags": """CASE WHEN (n * 4 + j) % 50 = 0 THEN '{"hallucination": true}'::jsonb ELSE '{}'::jsonb END""",
        },
        f"{source}, generate_series(0, {K - 1}) AS j",
    )
    insert_select(
        Comparison,
        {
            "ranking_id": "n",
            "batch_id": f"{first_batch} + ((n + 1) / 2) % {BATCHES}",
            "prompt_id": "(n + 1) / 2",
            "better_id": f"{base} + {perm('a')}",
            "worse_id": f"{base} + {perm('b')}",
            "labeler_id": labeler,
            "created_at": now,
        },
        f"{source}, generate_series(0, {K - 2}) AS a, generate_series(1, {K - 1}) AS b WHERE a < b",
    )
    insert_select(
        Demonstration,
        {
            "prompt_id": f"1 + i % {tasks}",
            "author_id": f"{first_user} + i % {LABELERS}",
            "text": f"'A demonstration about topic' || (i % {TOPICS}) || ', ' || md5(i::text)",
            "seconds_spent": "60 + i % 400",
            "created_at": now,
        },
        f"generate_series(1, {rankings // 5}) AS i",
    )
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = DEFAULT")
        for sql in explorer_indexes.FORWARD:
            cursor.execute(sql)
        for table in ("prompt", "completion", "task", "ranking", "comparison", "demonstration", "assignment"):
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('labeling_{table}', 'id'), "
                f"(SELECT max(id) FROM labeling_{table}))"
            )
        cursor.execute("VACUUM ANALYZE")
    return {"batch": batches[3].pk, "labeler": "bench-labeler-7", "task": tasks // 2}


def timed(client, url: str, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        response = client.get(url)
        best = min(best, time.perf_counter() - start)
        if response.status_code != 200:
            raise SystemExit(f"{url} answered {response.status_code}")
    return best


def pages(ids: dict) -> list[tuple[str, str]]:
    r = "/explore/rankings/"
    return [
        ("newest page of rankings (reference)", r),
        ("oldest page (?before=0)", f"{r}?before=0"),
        ("deep page (?after=1000)", f"{r}?after=1000"),
        ("filtered: batch and labeler", f"{r}?batch={ids['batch']}&labeler={ids['labeler']}"),
        ("filtered: category", f"{r}?category=chat"),
        ("filtered: category and split (matches none)", f"{r}?category=chat&split=test"),
        ("filtered: agreement to 50%", f"{r}?agreement_max=50"),
        ("filtered: agreement from 90%, one batch", f"{r}?agreement_min=90&batch={ids['batch']}"),
        ("filtered: flag hallucination", f"{r}?flag=hallucination"),
        ("filtered: too fast, one batch", f"{r}?too_fast=yes&batch={ids['batch']}"),
        ("filtered: too fast, every batch", f"{r}?too_fast=yes"),
        ("search rankings: topic123", f"{r}?q=topic123"),
        ("search rankings: comment 'river'", f"{r}?q=river"),
        ("search prompts: topic123", "/explore/prompts/?q=topic123"),
        ("search demonstrations: topic123", "/explore/demonstrations/?q=topic123"),
        ("newest page of prompts", "/explore/prompts/"),
        ("oldest page of demonstrations", "/explore/demonstrations/?before=0"),
        ("a task's page", f"/explore/tasks/{ids['task']}/"),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rankings", type=int, default=1_000_000)
    parser.add_argument("--database", default="loopwork_bench_explorer")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", action="store_true", help="time a database kept by an earlier --keep run")
    args = parser.parse_args()

    if not args.reuse:
        recreate(args.database)
    os.environ["DATABASE_URL"] = server_url(args.database)
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    from core.roles import ROLE_RESEARCHER
    from labeling.models import Batch

    settings.ALLOWED_HOSTS = ["testserver"]
    settings.SECURE_SSL_REDIRECT = False
    try:
        call_command("migrate", verbosity=0)
        if args.reuse:
            ids = {
                "batch": Batch.objects.order_by("pk")[3].pk,
                "labeler": "bench-labeler-7",
                "task": args.rankings // 4,
            }
        else:
            start = time.perf_counter()
            ids = fill(args.rankings)
            print(f"generated {args.rankings:,} rankings in {time.perf_counter() - start:.1f} s (SQL)")
        researcher, _ = get_user_model().objects.get_or_create(username="bench-researcher")
        from django.contrib.auth.models import Group

        researcher.groups.add(Group.objects.get(name=ROLE_RESEARCHER))
        client = Client()
        client.force_login(researcher)
        measured = []
        for name, url in pages(ids):
            timed(client, url, 1)  # warm the cache once
            measured.append((name, url, timed(client, url, args.repeat)))
        reference = measured[0][2]
        for name, url, seconds in measured:
            print(f"{name:45s} {seconds * 1000:8.1f} ms  x{seconds / reference:5.2f}  {url}")
        print(f"ratio: {max(s for _, _, s in measured) / reference:.2f}")
    finally:
        connection.close()
        if not args.keep:
            recreate(args.database, drop_only=True)


if __name__ == "__main__":
    main()
