"""The labeler's browser workspace while the database is gone: 503 with Retry-After, never a bare 500.

The app's connection goes through a TCP proxy to the test database; cutting the proxy drops the open
connection and refuses new ones, as a Postgres that went away does. Each request starts as it does under
a real server (close_old_connections, which the test client leaves out): a dead connection is dropped
and a new one tried. The task page and the home page answer a "try again" page, the draft save JSON (the
page's script shows its detail and keeps the draft in the browser), a form submit the page that says it
was not saved; once the proxy is back, the same labeler goes on where they were.
"""

import json
import socket
import threading

import pytest
from django.db import DatabaseError, close_old_connections, connection
from django.test import Client

from core.roles import ROLE_LABELER
from labeling.handout.next import assignment_next
from labeling.models import Assignment, Batch, Ranking
from tests.factories import BatchFactory, UserFactory, ranking_task

from .servers import free_port

pytestmark = pytest.mark.django_db(transaction=True)  # the proxy's connections see committed rows only


class CuttableProxy:
    """TCP from a free port of 127.0.0.1 to the database server. cut() drops every connection and refuses
    new ones; restore() listens again on the same port."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.open: list[socket.socket] = []
        self.lock = threading.Lock()
        self.restore()

    def restore(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()

    def cut(self) -> None:
        _close(self.listener)  # shutdown wakes the accept() that waits on it
        with self.lock:
            ends, self.open = self.open, []
        for end in ends:
            _close(end)

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # cut
                return
            server = socket.create_connection(self.upstream)
            with self.lock:
                self.open += [client, server]
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            _close(source)
            _close(sink)


def _close(end: socket.socket) -> None:
    try:
        end.shutdown(socket.SHUT_RDWR)
    except OSError:  # closed already, or the other end went first
        pass
    end.close()


@pytest.fixture
def proxy():
    """The default connection, from now on through a proxy the test can cut."""
    params = connection.settings_dict
    saved = params["HOST"], params["PORT"]
    proxy = CuttableProxy((params["HOST"] or "127.0.0.1", int(params["PORT"] or 5432)))
    connection.close()
    params["HOST"], params["PORT"] = "127.0.0.1", proxy.port
    try:
        yield proxy
    finally:
        params["HOST"], params["PORT"] = saved
        proxy.cut()
        try:
            connection.close()
        except DatabaseError:  # the connection the cut broke, if a request left it so
            pass


def request(client: Client, method: str, url: str, **kwargs):
    close_old_connections()  # what a real server does as each request starts (CONN_HEALTH_CHECKS)
    return getattr(client, method)(url, **kwargs)


def test_the_workspace_answers_503_while_the_database_is_gone_and_works_once_it_is_back(proxy):
    labeler = UserFactory(username="outage-labeler", roles=[ROLE_LABELER])
    batch = BatchFactory(kind=Batch.Kind.RANKING, overlap=1)
    batch.labelers.add(labeler)
    task = ranking_task(batch=batch, k=2)
    assignment = assignment_next(labeler=labeler, batch=batch)
    client = Client()
    client.force_login(labeler)
    page, draft = f"/assignments/{assignment.pk}/", f"/assignments/{assignment.pk}/draft/"
    a, b = task.task_completions.values_list("completion_id", flat=True)
    ranked = {"tiers": json.dumps([[a], [b]]), f"likert-{a}": "6", f"likert-{b}": "3", "seconds_spent": "9"}
    assert request(client, "get", page).status_code == 200

    proxy.cut()
    shown = request(client, "get", page)
    home = request(client, "get", "/")
    saved = request(
        client, "post", draft, data={"draft": {"comment": "half"}}, content_type="application/json"
    )
    sent = request(client, "post", page, data=ranked)

    for response in (shown, home, sent):
        assert response.status_code == 503 and response["Retry-After"] == "5"
        assert response["Content-Type"].startswith("text/html")
        assert "Try again in a moment" in response.content.decode()
    assert "What you sent was not saved" in sent.content.decode()
    assert saved.status_code == 503 and saved["Retry-After"] == "5"
    assert saved.json()["code"] == "database_unavailable"

    proxy.restore()
    assert request(client, "get", page).status_code == 200
    assert request(client, "post", page, data=ranked).status_code == 302
    assert Ranking.objects.get(assignment=assignment).tiers == [[a], [b]]
    assert Assignment.objects.get(pk=assignment.pk).status == Assignment.Status.SUBMITTED
