"""Gunicorn's settings for the web service: `gunicorn -c config/gunicorn.conf.py config.wsgi:application`
(docker-compose's web service and bench/labeling_load.py run exactly this).

Environment:
- GUNICORN_BIND: address to listen on, default 127.0.0.1:8000 (docker-compose sets 0.0.0.0:8000);
- GUNICORN_WORKERS, or WEB_CONCURRENCY (the name hosting platforms set): worker processes, default 2 per
  CPU this process may run on. Sync workers: one request at a time each, so a slow request holds one;
- GUNICORN_TIMEOUT: seconds before a silent worker is killed and replaced, default 30;
- GUNICORN_ACCESS_LOG: a path, or "-" for stdout; unset, no access log (errors still go to stderr).
"""

import os


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))  # the CPUs this container or cgroup lets us use
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _positive_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{name} must be a whole number of 1 or more, got {value!r}.")
    return int(value)


bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
workers = _positive_int("GUNICORN_WORKERS", _positive_int("WEB_CONCURRENCY", 2 * _cpus()))
timeout = _positive_int("GUNICORN_TIMEOUT", 30)
graceful_timeout = 20  # on SIGTERM, requests in flight get this long to finish
keepalive = 5
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
# Heartbeat files on a memory filesystem: a container's overlay disk can stall them into false timeouts.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Load Django in the master and import every view there (see when_ready), before the workers fork: they
# share that memory and answer their first request as fast as the next, instead of each spending seconds
# importing scipy and numpy on it. (A SIGHUP then restarts workers without reloading code: redeploy.)
preload_app = True


def when_ready(server) -> None:
    from django.db import connections
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every urls module, hence every view
    connections.close_all()  # no connection may cross the fork: each worker opens its own
