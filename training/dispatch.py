"""Sending work to the workers: the mechanism is labeling.dispatch (imports and exports send work too,
and labeling does not import training); training's services and commands reach it through here."""

import logging
import time

from celery import Task

from labeling.dispatch import BROKER_ERRORS, QueueUnavailable, check_queue, send, uses_broker

log = logging.getLogger(__name__)


def send_follow_up(task: Task, *args, tries: int = 3, pause: float = 1.0) -> bool:
    """Send a task whose reason is committed already (a round's next step after a run ended): tried a few
    times, `pause` seconds apart. False when the broker stayed unreachable; nothing is raised into the
    caller (a finishing run, the reaper), because the recovery sweep goes on from the committed rows.
    Each try asks the broker first: a quick connect fails at once where a send waits out its retries."""
    for attempt in range(1, tries + 1):
        try:
            check_queue()
            send(task, *args)
            return True
        except (QueueUnavailable, *BROKER_ERRORS) as exc:
            log.warning("sending %s%r failed (try %d of %d: %s)", task.name, args, attempt, tries, exc)
            if attempt < tries:
                time.sleep(pause)
    return False


__all__ = ["BROKER_ERRORS", "QueueUnavailable", "check_queue", "send", "send_follow_up", "uses_broker"]
