"""Postgres restarted under a running app: the real server (gunicorn, 2 workers, persistent connections)
on a throwaway Postgres cluster of our own, labelers submitting from threads while the cluster restarts.

During an outage every request fails cleanly (503 JSON "database_unavailable", no traceback, no hang);
every request sent after the cluster is back succeeds, also when the restart happened while nobody
worked, so that each worker's idle connection is dead when work resumes (CONN_HEALTH_CHECKS replaces
it); and every submit that was answered 2xx has its one ranking in the database.
"""

import json
import os
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from tests.factories import scored
from tests.training.conftest import wait_for

from .servers import ROOT, Gunicorn, run

pytestmark = pytest.mark.slow

LABELERS = 4
TASKS = 600  # more than the labelers get through: nobody runs out of work during the test
PAUSE = 0.05  # between a labeler's tasks: the machine is shared
HANG = 60  # seconds without an answer that count as a hang (the limit only guards; it measures nothing)
RESTARTS = [  # (pg_ctl stop mode, whether the labelers work during the outage)
    ("fast", True),  # a clean shutdown under traffic
    ("immediate", True),  # a crash under traffic, then WAL recovery
    ("fast", False),  # while all is quiet: the workers' idle connections die unnoticed
]

WORLD = """
import json, os
from django.contrib.auth import get_user_model
from django.core.management import call_command
from knox.models import AuthToken
from labeling.models import Batch
from labeling.roles import role_add

names = [f"labeler{n}" for n in range(int(os.environ["WORLD_LABELERS"]))]
tokens = {}
for name in names:
    user = get_user_model().objects.create_user(name)
    role_add(user=user, role="labeler")
    tokens[name] = AuthToken.objects.create(user=user)[1]
labelers = [arg for name in names for arg in ("--labeler", name)]
call_command("import_completions", os.environ["WORLD_FILE"], "--batch-name", "restart",
             "--overlap", str(len(names)), *labelers)
print(json.dumps({"batch": Batch.objects.get(name="restart").pk, "tokens": tokens}))
"""


@dataclass
class App:
    server: Gunicorn
    batch: int
    tokens: dict[str, str]


@pytest.fixture
def app(cluster, tmp_path):
    """Migrate the throwaway database, add labelers (with tokens) and a ranking batch through our own
    commands, and serve it all with gunicorn."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": cluster.url,
        "CONN_MAX_AGE": "60",  # persistent connections: the ones a restart kills under the workers
        "DEBUG": "0",
        "SECRET_KEY": "fault-test-only-secret",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "CELERY_BROKER_URL": "",
        "MEDIA_ROOT": str(tmp_path / "media"),
        "PYTHONUNBUFFERED": "1",
    }
    run([sys.executable, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env)
    completions = tmp_path / "completions.jsonl"
    with completions.open("w") as out:
        for n in range(TASKS):
            line = {
                "prompt": f"Prompt {n}: name a river.",
                "completions": [f"Danube {n}", f"Rhine {n}", f"Seine {n}"],
            }
            out.write(json.dumps({**line, "model": "fault-test"}) + "\n")
    world_env = {**env, "WORLD_FILE": str(completions), "WORLD_LABELERS": str(LABELERS)}
    built = run([sys.executable, "manage.py", "shell", "-c", WORLD], cwd=ROOT, env=world_env)
    world = json.loads(built.strip().splitlines()[-1])
    server = Gunicorn(env, tmp_path / "gunicorn.log", timeout=2 * HANG)
    try:
        yield App(server, world["batch"], world["tokens"])
    finally:
        server.stop()
        print(server.tail())


@dataclass
class Outcome:
    labeler: str
    action: str  # "next" or "submit"
    started: float  # time.monotonic()
    ended: float
    status: int | None  # None: no HTTP answer (see error)
    body: str
    content_type: str
    error: str = ""  # "hang" (no answer within HANG) or the connection error's name
    assignment: int | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def json(self) -> dict:
        return json.loads(self.body)


class Labelers:
    """Threads that each loop next task -> submit (ranked best first) until told to stop; they can be
    paused between tasks."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.outcomes: list[Outcome] = []
        self.stopping = threading.Event()
        self.working = threading.Event()
        self.working.set()
        self.paused: set[str] = set()
        self.crashes: list[BaseException] = []
        self.threads = [threading.Thread(target=self._work, args=(name,)) for name in app.tokens]

    def __enter__(self) -> "Labelers":
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.working.set()
        for thread in self.threads:
            thread.join()

    def _call(
        self, http: httpx.Client, name: str, action: str, url: str, assignment: int | None = None, **kwargs
    ) -> Outcome:
        started = time.monotonic()
        try:
            response = http.post(url, **kwargs)
            status, body, error = response.status_code, response.text, ""
            kind = response.headers.get("content-type", "")
        except httpx.TimeoutException:
            status, body, kind, error = None, "", "", "hang"
        except httpx.TransportError as exc:
            status, body, kind, error = None, "", "", type(exc).__name__
        outcome = Outcome(name, action, started, time.monotonic(), status, body, kind, error, assignment)
        self.outcomes.append(outcome)  # list.append is atomic: no lock needed
        return outcome

    def _work(self, name: str) -> None:
        try:
            self._loop(name)
        except BaseException as exc:  # surfaced by the test's waits, not lost in a thread
            self.crashes.append(exc)
            raise

    def _loop(self, name: str) -> None:
        headers = {"Authorization": f"Token {self.app.tokens[name]}"}
        with httpx.Client(base_url=self.app.server.url, headers=headers, timeout=HANG) as http:
            while not self.stopping.is_set():
                if not self.working.is_set():
                    self.paused.add(name)
                    self.working.wait()
                    self.paused.discard(name)
                    continue
                given = self._call(http, name, "next", f"/api/v1/tasks/next/{self.app.batch}/")
                if given.status == 204:
                    return
                if given.status == 200:
                    assignment = given.json()
                    tiers = [[c["id"]] for c in assignment["completions"]]
                    url = f"/api/v1/assignments/{assignment['id']}/submit/"
                    self._call(
                        http,
                        name,
                        "submit",
                        url,
                        assignment["id"],
                        json={"tiers": tiers, "ratings": scored(tiers)},
                    )
                self.stopping.wait(PAUSE)

    def wait(self, predicate, *, what: str) -> None:
        """wait_for, and when it gives up, say what the labelers got meanwhile and what the server logged."""
        try:
            wait_for(predicate, what=what, limit=180)
        except AssertionError as exc:
            answers = Counter(f"{o.action} {o.status or o.error}" for o in list(self.outcomes))
            raise AssertionError(
                f"{exc}; answers so far: {dict(answers)}\n{self.app.server.tail()}"
            ) from None

    def pause(self) -> None:
        """Return once no labeler has a request in flight."""
        self.working.clear()
        self.wait(lambda: self.paused == set(self.app.tokens), what="the labelers to pause")

    def resume(self) -> None:
        self.working.set()

    def failed_since(self, moment: float) -> list[Outcome]:
        assert not self.crashes, self.crashes
        return [o for o in list(self.outcomes) if not o.ok and o.ended > moment]

    def all_submitted_since(self, moment: float) -> bool:
        assert not self.crashes, self.crashes
        done = {
            o.labeler for o in list(self.outcomes) if o.action == "submit" and o.ok and o.started > moment
        }
        return done == set(self.app.tokens)


def test_requests_fail_cleanly_while_postgres_restarts_and_no_saved_submission_is_lost(cluster, app):
    outages = []  # (mode, busy, went down, back up), time.monotonic()
    with Labelers(app) as labelers:
        labelers.wait(lambda: labelers.all_submitted_since(0), what="every labeler to submit once")
        for mode, busy in RESTARTS:
            if not busy:
                labelers.pause()
            down = time.monotonic()
            cluster.stop(mode)
            if busy:  # stay down until the app has answered requests during the outage (a labeler each)
                labelers.wait(
                    lambda down=down: len(labelers.failed_since(down)) >= LABELERS,
                    what="requests during the outage",
                )
            cluster.start()
            up = time.monotonic()
            outages.append((mode, busy, down, up))
            labelers.resume()
            labelers.wait(
                lambda up=up: labelers.all_submitted_since(up),
                what="every labeler to submit after the restart",
            )
    outcomes = labelers.outcomes

    assert [o for o in outcomes if o.error == "hang"] == []
    failed = [o for o in outcomes if not o.ok]
    for outcome in failed:  # clean: a JSON 503 that says to retry, never a traceback or a bare 500 page
        assert outcome.status == 503, (outcome, app.server.tail())
        assert outcome.content_type == "application/json" and outcome.json()["code"] == "database_unavailable"
        assert "Traceback" not in outcome.body
    for mode, busy, down, up in outages:
        during = [o for o in failed if o.started < up and o.ended > down]
        assert len(during) >= (LABELERS if busy else 0), mode
        print(
            f"{mode} restart ({'busy' if busy else 'quiet'}): {len(during)} requests answered 503 during it"
        )
    # Back up means back to work: no request sent after a restart failed (no dead connection kept).
    assert [o for o in failed if not any(o.started < up and o.ended > down for *_, down, up in outages)] == []

    reported: dict[int, set[int]] = {}  # assignment: the ranking ids its 2xx submits answered
    for o in outcomes:
        if o.action == "submit" and o.ok:
            reported.setdefault(o.assignment, set()).add(o.json()["ranking"])
    assert all(len(ids) == 1 for ids in reported.values())  # a repeated submit answers the same ranking
    saved = {assignment: ids.pop() for assignment, ids in reported.items()}
    with psycopg.connect(cluster.dsn()) as conn:
        rows = conn.execute(
            "SELECT r.assignment_id, r.id, count(c.id) FROM labeling_ranking r"
            " LEFT JOIN labeling_comparison c ON c.ranking_id = r.id"
            " WHERE r.assignment_id = ANY(%s) GROUP BY r.assignment_id, r.id",
            [list(saved)],
        ).fetchall()
        stored = conn.execute("SELECT count(*) FROM labeling_ranking").fetchone()[0]
    in_database = {assignment: ranking for assignment, ranking, _ in rows}
    assert len(rows) == len(in_database) == len(saved)  # exactly one ranking per submit answered 2xx
    assert in_database == saved
    assert {pairs for *_, pairs in rows} == {3}  # K=3, a strict order: its 3 comparisons, same transaction
    submits = sum(1 for o in outcomes if o.action == "submit")
    print(
        f"{len(outcomes)} requests, {len(failed)} failed (all 503 during an outage); {submits} submits, "
        f"{len(saved)} answered 2xx, all {len(saved)} in the database, 0 lost; {stored} rankings stored"
    )
