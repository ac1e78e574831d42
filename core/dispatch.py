"""Sending work to the workers: Celery when CELERY_BROKER_URL is set, else an in-process thread.

The task bodies are the same either way; only the transport differs. The local demo (no Redis)
runs imports, exports and training in a background thread so the web page stays responsive. It
lives here, below training, because labeling's jobs (imports, exports) send work too.
"""

import logging
import threading
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import kombu.exceptions
import redis.exceptions
from celery import Task
from celery import (
    current_app as app,  # the project's Celery app (config/celery.py), without importing the project
)
from django.conf import settings
from django.db import close_old_connections, connection, connections, transaction
from django.utils import timezone

from .errors import ServiceError

log = logging.getLogger(__name__)


# What a send raises when the broker cannot be reached (kombu wraps most of them in OperationalError).
BROKER_ERRORS = (
    OSError,
    kombu.exceptions.OperationalError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
)


class QueueUnavailable(ServiceError):
    def __init__(self, detail: str) -> None:
        super().__init__(
            f"the task queue is unreachable ({detail}); nothing was started. Check that Redis and the "
            "workers are running, then try again.",
            code="queue_unavailable",
        )


def uses_broker() -> bool:
    return bool(settings.CELERY_BROKER_URL)


def _broker_url() -> str:
    return settings.CELERY_BROKER_URL


def check_queue() -> None:
    """Raise QueueUnavailable unless the broker answers now (a quick connect, no retries)."""
    if not uses_broker():
        return
    try:
        with app.connection_for_write(url=_broker_url(), connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
    except Exception as exc:  # kombu raises several kinds of connection errors
        raise QueueUnavailable(type(exc).__name__) from exc


def _run_in_thread(task: Task, args: tuple) -> None:
    def target() -> None:
        close_old_connections()
        try:
            task.apply(args=args, throw=False)
        finally:
            connections.close_all()  # the thread ends here: nothing else would close its connections

    threading.Thread(target=target, name=f"inprocess-{task.name}", daemon=True).start()


_inline = threading.local()


def _run_inline(task: Task, args: tuple) -> None:
    """Run now, in this thread, like a queue: a task sent from inside an inline task runs after it
    returns, never nested inside it (a nested round step would see its caller's unsaved state)."""
    pending = getattr(_inline, "pending", None)
    if pending is not None:
        pending.append((task, args))
        return
    _inline.pending = [(task, args)]
    try:
        while _inline.pending:
            next_task, next_args = _inline.pending.pop(0)
            next_task.apply(args=next_args, throw=True)
    finally:
        _inline.pending = None


def _send_now(task: Task, args: tuple) -> str | None:
    if not uses_broker():
        _run_in_thread(task, args)
        return None
    with app.connection_for_write(url=_broker_url(), connect_timeout=2) as conn:
        result = task.apply_async(args=args, connection=conn, retry=False)
    return result.id


def send(task: Task, *args: Any) -> str | None:
    """Queue the task. Inside a transaction it is sent once the transaction commits, so a worker
    never looks for a row that is not committed yet; then the task id is not known here (None)."""
    if not uses_broker() and getattr(settings, "TASKS_INLINE", False):
        _run_inline(task, args)  # management commands that wait, and tests: same thread, same connection
        return None
    if connection.in_atomic_block:
        transaction.on_commit(lambda: _send_now(task, args), robust=False)
        return None
    return _send_now(task, args)


def resend_queued(
    queued: list, *, label: str, queued_limit_seconds: int, send_again: Callable, fail_unsent: Callable
) -> dict[str, list[int]]:
    """The recovery sweeps' second send, for rows (training runs, import/export jobs) still queued after
    their message may have been lost. Each row has status, sent_at and created_at. With the queue up, each
    is sent again through `send_again(row)`, claimed by an update that names the send time it read, so of
    two sweeps only one sends (the task skips a row another message already started). With the queue down,
    a row queued longer than `queued_limit_seconds` is handed to `fail_unsent(row)` (True if it failed it)."""
    if not queued:
        return {"resent": [], "failed": []}
    try:
        check_queue()
    except QueueUnavailable:
        limit = timezone.now() - timedelta(seconds=queued_limit_seconds)
        return {
            "resent": [],
            "failed": [row.pk for row in queued if row.created_at < limit and fail_unsent(row)],
        }
    return {"resent": [row.pk for row in queued if _send_again(row, label, send_again)], "failed": []}


def _send_again(row: Any, label: str, send_again: Callable) -> bool:
    claimed = (
        type(row)
        .objects.filter(pk=row.pk, status=row.status, sent_at=row.sent_at)
        .update(sent_at=timezone.now())
    )
    if not claimed:
        return False
    log.warning(
        "%s %s is still queued since %s: sending it again (a lost message?)", label, row.pk, row.created_at
    )
    try:
        send_again(row)
    except BROKER_ERRORS as exc:
        log.warning("%s %s: sending it again failed (%s); the next sweep tries again", label, row.pk, exc)
        return False
    return True
