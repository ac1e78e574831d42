"""Is the process that runs a training run still alive? The reaper asks before failing a run whose
heartbeat went stale: a database outage stops heartbeats, not training.

A run records the host and pid of its process. On that host the pid answers for itself. Elsewhere,
Celery's workers say which tasks they are running; when the broker cannot be asked, every stale run
counts as alive (nothing is failed on a guess), and the next reap asks again.

Without a broker a round runs inside one process (the web server's or start_round's) and records it;
when that process is gone, so is everything that would have taken the round further.
"""

import logging
import os
import socket
from collections.abc import Iterable

import psutil
from celery import (
    current_app as app,  # the project's Celery app (config/celery.py), without importing the project
)

from core import dispatch

from ..models import Round, RunStatus, TrainingRun

log = logging.getLogger(__name__)

START_TOLERANCE = 0.5  # seconds: a start time is read from the clock ticks since boot, to 10 ms


def this_process() -> str:
    """ "host:pid@start" of this process, start being when it started (seconds since the epoch): a pid
    is used again once its process has ended, and a restarted container (same host name, pids counted
    from 1 again) gives its new worker the pid of the old one; the start time tells them apart."""
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}@{psutil.Process(pid).create_time():.2f}"


def _pid_alive(pid: int, started: str) -> bool:
    """The process `pid` exists and, where its start was recorded, is the one that started then."""
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False  # it ended; its parent has not read its exit yet
        if started:
            return abs(process.create_time() - float(started)) < START_TOLERANCE
    except psutil.NoSuchProcess:
        return False
    except (psutil.AccessDenied, ValueError):
        return True  # it exists, under another user (or an unreadable record): nothing is failed on a guess
    return True


def _alive_here(worker: str) -> bool | None:
    """True/False for a process of this host; None when it ran elsewhere (or we do not know). Records
    made before start times were kept ("host:pid") are checked by pid alone."""
    where, _, started = worker.partition("@")
    host, _, pid = where.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return None
    return _pid_alive(int(pid), started)


def _active_task_ids() -> set[str] | None:
    """The ids of the tasks Celery's workers are running now; None when the broker cannot be asked."""
    try:
        replies = app.control.inspect(timeout=2).active() or {}
    except Exception as exc:  # kombu and redis raise several kinds of connection errors
        log.warning("cannot ask the workers which runs they hold (%s): no run is reaped now", exc)
        return None
    return {task["id"] for tasks in replies.values() for task in tasks}


def alive_runs(runs: Iterable[TrainingRun]) -> set[int]:
    """The pks of the runs whose process is alive (or cannot be shown dead)."""
    alive, elsewhere = set(), []
    for run in runs:
        here = _alive_here(run.worker)
        if here:
            alive.add(run.pk)
        elif here is None:
            elsewhere.append(run)
    if elsewhere and dispatch.uses_broker():
        active = _active_task_ids()
        for run in elsewhere:
            if active is None or (run.worker_task_id and run.worker_task_id in active):
                alive.add(run.pk)
    return alive


def round_gone(rnd: Round) -> bool:
    """Without a broker: True when the process that runs the round is gone (its pid answers no more on
    this host) and no running run of the round has a live process. A process on another host, or none
    recorded (a round a broker's workers run), counts as alive: nothing is failed on a guess."""
    if not rnd.worker or _alive_here(rnd.worker) is not False:
        return False
    return not alive_runs(rnd.runs.filter(status=RunStatus.RUNNING))
