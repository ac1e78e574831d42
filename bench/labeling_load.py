"""Load benchmark of the labeling API under gunicorn, with pgbench on the same server as the reference
(not a test).

Creates its own database (loopwork_bench_load on the server of DATABASE_URL, dropped and re-created each
run), migrates it and builds, through our services, --labelers labelers with API tokens and one ranking
batch of --tasks tasks (K=4 completions each, overlap 3). Starts the production command,
`gunicorn -c config/gunicorn.conf.py config.wsgi:application` (2 workers per CPU unless GUNICORN_WORKERS
is set), on 127.0.0.1 with DEBUG=0, then:

0. warm-up: the realistic loop for --warmup s (default 10), not measured, then ANALYZE, as autovacuum
   would on a server in service (see main: statements planned on empty tables stay slow).
1. realistic: every labeler loops POST /api/v1/tasks/next/{batch}/, thinks 0.5 to 2 s, POST
   /api/v1/assignments/{id}/submit/ with a K=4 ranking (random ties) and Likert ratings, for --duration s
   (labelers arrive over the first 2 s). Targets: p95 under 150 ms for both calls, no errors.
2. saturation: --sat-clients labelers run the same loop without thinking for --sat-duration s; cycles/s.
3. reference: pgbench's TPC-B-like script (-c 8 -j 2, scale 1) on a scratch database of the same server.

`204 No Content` from next is the API's "nothing left for you", counted apart and not an error. After
each phase it checks in SQL that no task holds more submitted and active assignments than its overlap,
no labeler holds two active ones, and every acknowledged (201) submit has exactly one ranking with its
4 ratings and C(4,2) - ties comparisons; it exits 1 if not. It also prints where the CPU went per cycle
(gunicorn, the batch database's Postgres backends, this load generator) and the machine's load. The
last line is `ratio: <saturated cycles/s / pgbench TPS>` (targets: at least 0.05, and 100 cycles/s).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres .venv/bin/python bench/labeling_load.py
"""

import argparse
import asyncio
import json
import os
import random
import re
import runpy
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from bench.export import recreate, server_url  # noqa: E402

K = 4
OVERLAP = 3
THINK_S = (0.5, 2.0)
TARGET_P95_MS = 150
CALLS = ("next", "submit")


# --- the world -------------------------------------------------------------------------------------


def build_world(*, labelers: int, tasks: int) -> tuple[int, list[str]]:
    """Labelers with tokens, and a ranking batch of `tasks` prompts with K completions each.
    Returns (batch id, tokens)."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from knox.models import AuthToken

    from core.roles import ROLE_LABELER
    from labeling.models import Completion, Prompt
    from labeling.services.batches import batch_create_from_completions
    from labeling.services.prompts import dedup_key, split_for
    from labeling.vocab import Category, PromptSource

    User = get_user_model()
    users = User.objects.bulk_create(User(username=f"load-labeler-{i}") for i in range(labelers))
    Group.objects.get(name=ROLE_LABELER).user_set.add(*users)
    tokens = [AuthToken.objects.create(user=user)[1] for user in users]  # each secret, shown once
    texts = [
        f"Load prompt {i}: explain item {i} to a curious child in three sentences." for i in range(tasks)
    ]
    prompts = Prompt.objects.bulk_create(
        (
            Prompt(
                text=text,
                category=Category.GENERATION,
                source=PromptSource.IMPORTED,
                origin_user=f"load-origin-{i % 100}",
                split=split_for(f"load-origin-{i % 100}"),
                dedup_key=dedup_key(text),
            )
            for i, text in enumerate(texts)
        ),
        batch_size=1000,
    )
    completions = Completion.objects.bulk_create(
        (
            Completion(
                prompt=prompt, text=f"Answer {j} to prompt {prompt.pk}. " * (4 + 4 * j), source_name="load"
            )
            for prompt in prompts
            for j in range(K)
        ),
        batch_size=4000,
    )
    batch = batch_create_from_completions(
        completions=completions, name="load benchmark", overlap=OVERLAP, labelers=users
    )
    return batch.pk, tokens


# --- the server ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_env(database_url: str, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url,
        DEBUG="0",
        SECRET_KEY=os.environ.get("SECRET_KEY") or "benchmark-only-secret-" + "x" * 40,
        SECURE_SSL_REDIRECT="0",
        ALLOWED_HOSTS="127.0.0.1",
        GUNICORN_BIND=f"127.0.0.1:{port}",
        CELERY_BROKER_URL="",
        LOG_LEVEL="WARNING",
        # Labels written at the submit, as the integrity checks below read them: with an undo window a
        # submit is pending (no ranking yet) until a sweep writes it, which this benchmark does not run.
        LABELING_UNDO_SECONDS="0",
    )
    return env


def gunicorn_workers(env: dict[str, str]) -> str:
    """How the production settings run gunicorn here, e.g. '2 gthread workers x 4 threads'."""
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        conf = runpy.run_path(str(ROOT / "config" / "gunicorn.conf.py"))
        threads = f" x {conf['threads']} threads" if conf.get("threads", 1) > 1 else ""
        return f"{conf['workers']} {conf.get('worker_class', 'sync')} workers{threads}"
    finally:
        os.environ.clear()
        os.environ.update(saved)


def start_gunicorn(env: dict[str, str], log) -> subprocess.Popen:
    gunicorn = Path(sys.executable).with_name("gunicorn")
    command = [str(gunicorn)] if gunicorn.exists() else [sys.executable, "-m", "gunicorn"]
    return subprocess.Popen(
        [*command, "-c", "config/gunicorn.conf.py", "config.wsgi:application"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C reaches the benchmark, which stops gunicorn itself
    )


def wait_until_up(proc: subprocess.Popen, base: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"gunicorn exited with status {proc.returncode} before answering")
        try:
            with urllib.request.urlopen(f"{base}/api/v1/", timeout=2):
                return
        except urllib.error.HTTPError as exc:
            if exc.code == 401:  # up: the API root wants a token
                return
        except OSError:  # not listening yet
            pass
        time.sleep(0.2)
    raise RuntimeError(f"gunicorn did not answer within {seconds:.0f} s")


def stop_gunicorn(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # graceful: the arbiter stops its workers
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# --- the labelers ----------------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))  # ms
    statuses: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    acknowledged: dict[int, tuple[int, int]] = field(default_factory=dict)  # assignment: (ranking, pairs)
    seconds: float = 0.0

    def errors(self) -> int:
        return sum(n for c in self.statuses.values() for s, n in c.items() if not str(s).startswith("2"))


def random_tiers(completion_ids: list[int]) -> list[list[int]]:
    """Best first; about one neighbour in five tied."""
    ids = random.sample(completion_ids, len(completion_ids))
    tiers = [[ids[0]]]
    for cid in ids[1:]:
        if random.random() < 0.2:
            tiers[-1].append(cid)
        else:
            tiers.append([cid])
    return tiers


class _Exchange(asyncio.Protocol):
    """One HTTP/1.1 request on its own connection, the answer read to the end (the server closes: sync
    gunicorn workers keep no connection alive)."""

    def __init__(self, request: bytes, done: asyncio.Future) -> None:
        self.request, self.done, self.chunks = request, done, []

    def connection_made(self, transport) -> None:
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            if exc is None:
                self.done.set_result(b"".join(self.chunks))
            else:
                self.done.set_exception(exc)


def _dechunk(body: bytes) -> bytes:
    out, rest = [], body
    while rest:
        size, _, rest = rest.partition(b"\r\n")
        n = int(size.split(b";")[0], 16)
        if n == 0:
            break
        out.append(rest[:n])
        rest = rest[n + 2 :]
    return b"".join(out)


class Client:
    """A bare HTTP client over asyncio's transports: the load generator shares the machine's 2 CPUs with
    the server, and this costs it about 0.5 ms of CPU per cycle, where aiohttp cost 1.6 and httpx 7."""

    def __init__(self, port: int) -> None:
        self.port = port

    async def post(self, path: str, token: str, body=None) -> tuple[int, bytes]:
        data = b"" if body is None else json.dumps(body).encode()
        request = (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nAuthorization: Token {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n"
        ).encode() + data
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        await loop.create_connection(lambda: _Exchange(request, done), "127.0.0.1", self.port)
        raw = await done
        head, _, content = raw.partition(b"\r\n\r\n")
        status_line, _, headers = head.partition(b"\r\n")
        if b"transfer-encoding: chunked" in headers.lower():
            content = _dechunk(content)
        return int(status_line.split(b" ", 2)[1]), content


async def call(
    client: Client, phase: Phase, name: str, path: str, token: str, body=None
) -> tuple[int, bytes]:
    """(status, body) of a POST; (0, b"") when no answer came (in 60 s), which counts as an error too."""
    start = time.perf_counter()
    try:
        status, content = await asyncio.wait_for(client.post(path, token, body), 60)
    except Exception as exc:
        phase.statuses[name][type(exc).__name__] += 1
        return 0, b""
    phase.latencies[name].append((time.perf_counter() - start) * 1000)
    phase.statuses[name][status] += 1
    return status, content


async def labeler(
    client: Client, phase: Phase, token: str, batch_id: int, deadline: float, think: bool
) -> None:
    from labeling.ranking_rules import comparison_pairs

    if think:
        await asyncio.sleep(random.uniform(0, THINK_S[1]))  # labelers arrive over the first seconds
    while time.monotonic() < deadline:
        status, content = await call(client, phase, "next", f"/api/v1/tasks/next/{batch_id}/", token)
        if status != 200:  # 204: nothing left; or an error
            await asyncio.sleep(random.uniform(*THINK_S) if think else 0.1)
            continue
        assignment = json.loads(content)
        ids = [c["id"] for c in assignment["completions"]]
        if think:
            await asyncio.sleep(random.uniform(*THINK_S))
        tiers = random_tiers(ids)
        body = {
            "tiers": tiers,
            "ratings": {str(cid): {"likert": random.randint(1, 7), "flags": {}} for cid in ids},
            "seconds_spent": random.randint(5, 60),
        }
        url = f"/api/v1/assignments/{assignment['id']}/submit/"
        status, content = await call(client, phase, "submit", url, token, body)
        if status == 201:
            phase.acknowledged[assignment["id"]] = (
                json.loads(content)["ranking"],
                len(comparison_pairs(tiers)),
            )


async def run_phase(phase: Phase, port: int, tokens: list[str], batch_id: int, seconds: float, think: bool):
    client = Client(port)
    start = time.monotonic()
    deadline = start + seconds  # no new cycle after it; cycles under way finish
    await asyncio.gather(*(labeler(client, phase, t, batch_id, deadline, think) for t in tokens))
    phase.seconds = time.monotonic() - start


# --- where the time goes --------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:  # gone, or not Linux
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                pass
    return found


class Meter:
    """While a phase runs, samples each second the CPU time of gunicorn's processes and of the bench
    database's Postgres backends (/proc, so Linux only), and how many of those backends wait on a lock."""

    def __init__(self, gunicorn_pid: int, database: str) -> None:
        self.gunicorn_pid, self.database = gunicorn_pid, database
        self.first: dict[tuple[str, int], float] = {}
        self.last: dict[tuple[str, int], float] = {}
        self.samples, self.active, self.waiting = 0, 0, 0
        self.done = threading.Event()

    def _sample(self, conn) -> None:
        rows = conn.execute(
            "SELECT pid, state = 'active', wait_event_type = 'Lock' FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.database],
        ).fetchall()
        self.samples += 1
        self.active += sum(1 for _, active, _ in rows if active)
        self.waiting += sum(1 for _, _, waiting in rows if waiting)
        pids = [("app", p) for p in [self.gunicorn_pid, *children_of(self.gunicorn_pid)]]
        for key in pids + [("postgres", pid) for pid, _, _ in rows]:
            if (cpu := cpu_seconds(key[1])) is not None:
                self.last[key] = cpu
                self.first.setdefault(key, cpu if self.samples == 1 else 0.0)  # new since: all its time

    def _run(self) -> None:
        import psycopg

        with psycopg.connect(server_url("postgres").replace("postgres://", "postgresql://", 1)) as conn:
            conn.autocommit = True
            while True:
                self._sample(conn)
                if self.done.wait(1.0):
                    self._sample(conn)
                    return

    def __enter__(self) -> "Meter":
        self.cpu_self = time.process_time()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()
        self.cpu_self = time.process_time() - self.cpu_self

    def report(self, cycles: int) -> None:
        used = defaultdict(float)
        for key, cpu in self.last.items():
            used[key[0]] += cpu - self.first[key]
        per = 1000 / max(cycles, 1)
        n = max(self.samples, 1)
        print(
            f"  cpu per cycle: gunicorn {used['app'] * per:.1f} ms, postgres {used['postgres'] * per:.1f} ms, "
            f"load generator {self.cpu_self * per:.1f} ms; postgres backends: {self.active / n:.1f} active, "
            f"{self.waiting / n:.1f} waiting on a lock (1-s samples); load average {os.getloadavg()[0]:.1f} "
            f"on {os.cpu_count()} CPUs"
        )


# --- checks and figures ----------------------------------------------------------------------------


def integrity(phase: Phase, batch_id: int) -> tuple[dict[str, int], int]:
    """Counts that must all be 0, from the database, and how many rankings the batch holds."""
    from django.db import connection

    from labeling.ranking_rules import comparison_pairs

    assignments = list(phase.acknowledged)
    rankings = [phase.acknowledged[a][0] for a in assignments]
    pairs = [phase.acknowledged[a][1] for a in assignments]
    with connection.cursor() as cursor:
        cursor.execute(
            """SELECT count(*) FROM (
                 SELECT a.task_id FROM labeling_assignment a JOIN labeling_batch b ON b.id = a.batch_id
                 WHERE a.batch_id = %s AND a.status IN ('submitted', 'active')
                 GROUP BY a.task_id, b.overlap HAVING count(*) > b.overlap) AS t""",
            [batch_id],
        )
        over_overlap = cursor.fetchone()[0]
        cursor.execute(
            """SELECT count(*) FROM (SELECT labeler_id FROM labeling_assignment
                 WHERE batch_id = %s AND status = 'active' GROUP BY labeler_id HAVING count(*) > 1) AS l""",
            [batch_id],
        )
        two_live = cursor.fetchone()[0]
        cursor.execute(
            """WITH sent (assignment_id, ranking_id, pairs) AS (
                 SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::int[]))
               SELECT
                 count(*) FILTER (WHERE r.n = 0),
                 count(*) FILTER (WHERE r.n > 1),
                 count(*) FILTER (WHERE r.n = 1 AND r.id <> s.ranking_id),
                 count(*) FILTER (WHERE r.n = 1 AND (c.n <> s.pairs OR c.distinct_n <> c.n)),
                 count(*) FILTER (WHERE r.n = 1 AND g.n <> %s),
                 count(*) FILTER (WHERE a.status IS DISTINCT FROM 'submitted')
               FROM sent s
               LEFT JOIN labeling_assignment a ON a.id = s.assignment_id
               CROSS JOIN LATERAL (SELECT count(*) AS n, min(id) AS id FROM labeling_ranking
                                   WHERE assignment_id = s.assignment_id) r
               CROSS JOIN LATERAL (SELECT count(*) AS n, count(DISTINCT (better_id, worse_id)) AS distinct_n
                                   FROM labeling_comparison WHERE ranking_id = r.id) c
               CROSS JOIN LATERAL (SELECT count(*) AS n FROM labeling_rating WHERE ranking_id = r.id) g""",
            [assignments, rankings, pairs, K],
        )
        lost, duplicated, other_ranking, wrong_comparisons, wrong_ratings, not_submitted = cursor.fetchone()
        # Every stored ranking of the batch, acknowledged or not: comparisons as its tiers imply.
        cursor.execute(
            """SELECT r.tiers, (SELECT count(*) FROM labeling_comparison c WHERE c.ranking_id = r.id)
               FROM labeling_ranking r JOIN labeling_task t ON t.id = r.task_id WHERE t.batch_id = %s""",
            [batch_id],
        )
        stored = cursor.fetchall()
    inconsistent = sum(1 for tiers, n in stored if len(comparison_pairs(json.loads(tiers))) != n)
    return {
        "tasks over their overlap": over_overlap,
        "labelers holding two active assignments": two_live,
        "acknowledged submits lost (no ranking)": lost,
        "acknowledged submits duplicated (2+ rankings)": duplicated,
        "acknowledged submits with another ranking id": other_ranking,
        "acknowledged rankings with wrong comparisons": wrong_comparisons,
        "acknowledged rankings without their K ratings": wrong_ratings,
        "acknowledged assignments not marked submitted": not_submitted,
        "stored rankings whose comparisons disagree with their tiers": inconsistent,
    }, len(stored)


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))]


def report(phase: Phase, batch_id: int, latencies: bool = True) -> bool:
    """Print the phase's figures and checks; False if an integrity check failed."""
    for name in CALLS if latencies else ():
        values = phase.latencies[name]
        statuses = ", ".join(f"{s}: {n:,}" for s, n in sorted(phase.statuses[name].items(), key=str))
        if not values:
            print(f"  {name:<7} no answers ({statuses or 'no calls'})")
            continue
        p50, p95, p99 = (percentile(values, p) for p in (50, 95, 99))
        mark = "met" if p95 < TARGET_P95_MS else "MISSED"
        print(
            f"  {name:<7} {len(values):>7,} calls  p50 {p50:6.1f} ms  p95 {p95:6.1f} ms  p99 {p99:6.1f} ms"
            f"  max {max(values):6.0f} ms  [{statuses}]  (p95 < {TARGET_P95_MS} ms: {mark})"
        )
    nothing_left = phase.statuses["next"][204]
    cycles = len(phase.acknowledged)
    print(
        f"  errors (non-2xx or no answer): {phase.errors()}; 'nothing left' (204 from next, by design): "
        f"{nothing_left}"
    )
    print(
        f"  cycles (next + 201 submit): {cycles:,} in {phase.seconds:.1f} s = {cycles / phase.seconds:.1f}/s"
    )
    counts, stored = integrity(phase, batch_id)
    failed = {name: n for name, n in counts.items() if n}
    print(
        f"  integrity ({stored:,} rankings stored in the batch so far): " + ("ok" if not failed else "FAILED")
    )
    for name, n in counts.items():
        print(f"    {name}: {n}")
    return not failed


def pgbench_tps(pgbench: str, seconds: int, clients: int, threads: int) -> float:
    scratch = "loopwork_bench_pgbench"
    parts = urlsplit(server_url(scratch))
    env = dict(os.environ, PGPASSWORD=parts.password or "")
    conn = [
        "-h",
        parts.hostname or "127.0.0.1",
        "-p",
        str(parts.port or 5432),
        "-U",
        parts.username or "postgres",
    ]
    recreate(scratch)
    try:
        subprocess.run([pgbench, "-i", "-q", *conn, scratch], check=True, capture_output=True, env=env)
        out = subprocess.run(
            [pgbench, "-T", str(seconds), "-c", str(clients), "-j", str(threads), *conn, scratch],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        ).stdout
    finally:
        recreate(scratch, drop_only=True)
    return float(re.search(r"tps = ([\d.]+) \(without initial connection time\)", out).group(1))


def find_pgbench() -> str:
    found = shutil.which("pgbench") or next(
        iter(sorted(glob("/usr/lib/postgresql/*/bin/pgbench"))[::-1]), None
    )
    if found is None:
        raise SystemExit("pgbench not found: install postgresql-client or pass --pgbench PATH")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelers", type=int, default=200)
    parser.add_argument("--duration", type=float, default=60, help="seconds of the realistic phase")
    parser.add_argument(
        "--warmup",
        type=float,
        default=10,
        help="seconds of unmeasured realistic load, then ANALYZE (0: none)",
    )
    parser.add_argument("--sat-duration", type=float, default=30, help="seconds of the saturation phase")
    parser.add_argument("--sat-clients", type=int, default=24, help="labelers of the saturation phase")
    parser.add_argument("--tasks", type=int, default=8000, help="tasks in the batch (overlap 3)")
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument("--pgbench", default="", help="path of pgbench (default: found on PATH)")
    parser.add_argument("--database", default="loopwork_bench_load")
    parser.add_argument("--keep-db", action="store_true", help="keep the database afterwards")
    args = parser.parse_args()
    pgbench = args.pgbench or find_pgbench()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so the finally below stops gunicorn

    recreate(args.database)
    database_url = server_url(args.database)
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("SECRET_KEY", "benchmark-only-secret-" + "x" * 40)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    proc, log, ok = None, tempfile.TemporaryFile(), True
    try:
        start = time.perf_counter()
        call_command("migrate", verbosity=0)
        batch_id, tokens = build_world(labelers=max(args.labelers, args.sat_clients), tasks=args.tasks)
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
            cursor.execute("SHOW autovacuum")
            autovacuum = cursor.fetchone()[0]
        print(
            f"world: {len(tokens)} labelers with tokens, 1 ranking batch of {args.tasks:,} tasks "
            f"(K={K}, overlap {OVERLAP}), built in {time.perf_counter() - start:.1f} s"
        )
        port = free_port()
        env = server_env(database_url, port)
        base = f"http://127.0.0.1:{port}"
        proc = start_gunicorn(env, log)
        wait_until_up(proc, base)
        print(
            f"server: gunicorn -c config/gunicorn.conf.py config.wsgi:application, "
            f"{gunicorn_workers(env)} on {os.cpu_count()} CPUs, {base}, DEBUG=0"
        )

        # Warm-up: the realistic loop, unmeasured (integrity still checked), then ANALYZE. The batch and its
        # tables start empty, and Postgres plans each connection's statements (foreign-key checks
        # included) once, from the statistics of the moment: planned on empty tables, they scan whole
        # tables as they grow (10 foreign-key checks per cycle went from 2 us to 200 us each). A server
        # that has been up for a while has analyzed tables (autovacuum does it once they change by 10%).
        if args.warmup > 0:
            warm = Phase("warm-up")
            asyncio.run(run_phase(warm, port, tokens[: args.labelers], batch_id, args.warmup, think=True))
            print(
                f"warm-up: the realistic loop for {args.warmup:.0f} s, then ANALYZE (autovacuum is {autovacuum})"
            )
            ok = report(warm, batch_id, latencies=False) and ok
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE")

        realistic = Phase("realistic")
        with Meter(proc.pid, args.database) as meter:
            asyncio.run(
                run_phase(realistic, port, tokens[: args.labelers], batch_id, args.duration, think=True)
            )
        print(
            f"phase 1, realistic: {args.labelers} labelers, think {THINK_S[0]}-{THINK_S[1]} s, "
            f"{args.duration:.0f} s"
        )
        ok = report(realistic, batch_id) and ok
        meter.report(len(realistic.acknowledged))

        saturated = Phase("saturation")
        with Meter(proc.pid, args.database) as meter:
            asyncio.run(
                run_phase(
                    saturated, port, tokens[: args.sat_clients], batch_id, args.sat_duration, think=False
                )
            )
        print(f"phase 2, saturation: {args.sat_clients} labelers, no think time, {args.sat_duration:.0f} s")
        ok = report(saturated, batch_id) and ok
        meter.report(len(saturated.acknowledged))
        cycles_s = len(saturated.acknowledged) / saturated.seconds

        stop_gunicorn(proc)
        tps = pgbench_tps(pgbench, args.pgbench_seconds, clients=8, threads=2)
        print(f"reference: pgbench TPC-B-like, scale 1, -c 8 -j 2 -T {args.pgbench_seconds}: {tps:,.0f} TPS")
        print(f"saturated cycles/s: {cycles_s:.1f} (target at least 100)")
        if not ok:
            print("INTEGRITY CHECK FAILED")
        print(f"ratio: {cycles_s / tps:.3f}")
    except BaseException:
        if proc is not None:
            log.seek(0)
            tail = log.read().decode(errors="replace")[-4000:]
            print(f"gunicorn's log (tail):\n{tail}", file=sys.stderr)
        raise
    finally:
        if proc is not None:
            stop_gunicorn(proc)
        log.close()
        connection.close()
        if not args.keep_db:
            recreate(args.database, drop_only=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
