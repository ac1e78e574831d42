"""Living through a database outage on the worker: training must never stop because Postgres blinked.

A run's side writes (progress, heartbeat, the cancel check) are `attempt`ed: a database error is logged,
the thread's connection is dropped (the next query opens a fresh one) and the write is tried again later,
while training goes on. Its final writes (the outcome, the registered model) are `insisted` on: retried,
with a growing pause, until the database answers.
"""

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from django.db import Error, connection

log = logging.getLogger(__name__)
T = TypeVar("T")
RETRY_PAUSES = (1, 2, 4, 8, 15, 30)  # seconds; the last one repeats


def drop_connection() -> None:
    """Close this thread's connection: after an outage it is dead, and Django would keep using it."""
    try:
        connection.close()
    except Error:
        pass


def attempt(what: str, write: Callable[[], object]) -> bool:
    """Run a write that may wait; False (logged, connection dropped) when the database failed it."""
    try:
        write()
    except Error as exc:
        log.warning("%s failed, retried later (%s: %s)", what, type(exc).__name__, str(exc).strip()[:200])
        drop_connection()
        return False
    return True


def insist(what: str, write: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
    """Run a write that must happen, again and again until the database answers."""
    for tries in range(1, 1_000_000):
        try:
            return write()
        except Error as exc:
            pause = RETRY_PAUSES[min(tries, len(RETRY_PAUSES)) - 1]
            log.warning(
                "%s failed (try %d: %s: %s); again in %d s",
                what,
                tries,
                type(exc).__name__,
                str(exc).strip()[:200],
                pause,
            )
            drop_connection()
            sleep(pause)
    raise RuntimeError(f"{what}: gave up")  # unreachable in practice: about a year of retries
