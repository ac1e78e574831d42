"""Sending training's work to the workers, by task name. The mechanism (Celery or a thread, the queue
checks) is core.dispatch, which training imports directly; this module adds the task names and the
retried follow-up. Services name a task rather than import it, so the task modules (which call the services)
stay the only side of that edge: tasks -> services, never back.
"""

import logging
import time
from typing import Any

from celery import Task
from celery import (
    current_app as app,  # the project's Celery app (config/celery.py), without importing the project
)

from core.dispatch import BROKER_ERRORS, QueueUnavailable, check_queue, send

log = logging.getLogger(__name__)

# The task names, as registered in training/tasks.py and routed in CELERY_TASK_ROUTES.
EXECUTE_RUN = "training.tasks.execute_run"
ADVANCE_ROUND = "training.tasks.advance_round"


def task_named(name: str) -> Task:
    """The registered task of that name: the worker registers training.tasks at start, the web process
    when Django is ready (TrainingConfig.ready). KeyError names a task nobody registered."""
    return app.tasks[name]


def send_named(name: str, *args: Any) -> str | None:
    """Queue the task called `name` (core.dispatch.send: after the commit, by broker or in-process)."""
    return send(task_named(name), *args)


def send_follow_up(name: str, *args: Any, tries: int = 3, pause: float = 1.0) -> bool:
    """Send a task whose reason is committed already (a round's next step after a run ended): tried a few
    times, `pause` seconds apart. False when the broker stayed unreachable; nothing is raised into the
    caller (a finishing run, the reaper), because the recovery sweep goes on from the committed rows.
    Each try asks the broker first: a quick connect fails at once where a send waits out its retries."""
    for attempt in range(1, tries + 1):
        try:
            check_queue()
            send_named(name, *args)
            return True
        except (QueueUnavailable, *BROKER_ERRORS) as exc:
            log.warning("sending %s%r failed (try %d of %d: %s)", name, args, attempt, tries, exc)
            if attempt < tries:
                time.sleep(pause)
    return False


__all__ = [
    "ADVANCE_ROUND",
    "EXECUTE_RUN",
    "send_follow_up",
    "send_named",
    "task_named",
]
