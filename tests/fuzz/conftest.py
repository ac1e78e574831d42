from collections import Counter

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections, transaction
from django.test import override_settings
from knox.models import AuthToken

from tests.fuzz.world import build_fuzz_world

# (role, status class) of every request the schemathesis test sent, summed up at the end of the run.
requests_sent: Counter = Counter()


@pytest.fixture
def tally() -> Counter:
    return requests_sent


def pytest_terminal_summary(terminalreporter) -> None:
    roles = sorted({role for role, _ in requests_sent})
    for role in roles:
        by_class = {k: n for (r, k), n in sorted(requests_sent.items()) if r == role}
        counts = ", ".join(f"{k}: {n}" for k, n in by_class.items())
        terminalreporter.write_line(f"fuzzed API as {role}: {sum(by_class.values())} requests ({counts})")


@pytest.fixture(scope="module")
def fuzz_world(django_db_setup, django_db_blocker, tmp_path_factory):
    """One world per test module, in a transaction rolled back at its end (each test, and each request the
    tests send, runs in a savepoint inside it). With no broker and nothing ever committed, training work
    (sent on commit) never starts."""
    media = tmp_path_factory.mktemp("fuzz-media")
    quiet_queue = override_settings(MEDIA_ROOT=media, CELERY_BROKER_URL="", TASKS_INLINE=False)
    with django_db_blocker.unblock(), quiet_queue, transaction.atomic():
        world = build_fuzz_world()
        world["tokens"] = {role: AuthToken.objects.create(user=u)[1] for role, u in world["users"].items()}
        yield world
        transaction.set_rollback(True)


@pytest.fixture
def keep_connection():
    """The WSGI handler closes the database connection after each request; inside the test's transaction
    it must stay open (Django's test client does the same)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)
