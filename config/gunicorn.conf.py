"""Gunicorn's settings for the web service: `gunicorn -c config/gunicorn.conf.py config.wsgi:application`
(docker-compose's web service and bench/labeling_load.py run exactly this).

In docker-compose it listens on the internal network only, behind the TLS proxy (deploy/nginx/), which
buffers whole requests and responses, so slow clients wait on the proxy, not on a worker.

Environment:
- GUNICORN_BIND: address to listen on, default 127.0.0.1:8000 (docker-compose sets 0.0.0.0:8000);
- GUNICORN_WORKERS, or WEB_CONCURRENCY (the name hosting platforms set): worker processes, default one per
  CPU this process may run on, at least 2;
- GUNICORN_THREADS: requests each worker serves at once, default 4. A slow client that reaches gunicorn
  directly holds one thread, not the worker. Each thread may hold a database connection: keep
  workers x threads (x web containers) under Postgres's max_connections;
- GUNICORN_TIMEOUT: seconds before a silent worker is killed and replaced, default 30;
- GUNICORN_ACCESS_LOG: a path, or "-" for stdout; unset, no access log (errors still go to stderr);
- FORWARDED_ALLOW_IPS: the addresses (or networks, 10.0.0.0/8) of the proxy in front, whose
  X-Forwarded-Proto says whether the client came over HTTPS; default 127.0.0.1,::1. Anyone else's is
  ignored, so nobody who reaches gunicorn directly passes for an HTTPS client.
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
workers = _positive_int("GUNICORN_WORKERS", _positive_int("WEB_CONCURRENCY", max(2, _cpus())))
# Threads, not one request per process: a few slow connections cannot take every worker (sync workers, 2 of
# them, were taken by three slow sockets). Gunicorn still kills a worker whose main loop goes silent.
worker_class = "gthread"
threads = _positive_int("GUNICORN_THREADS", 4)
timeout = _positive_int("GUNICORN_TIMEOUT", 30)
graceful_timeout = 20  # on SIGTERM, requests in flight get this long to finish
keepalive = 5
accesslog = os.environ.get("GUNICORN_ACCESS_LOG") or None
errorlog = "-"
# Heartbeat files on a memory filesystem: a container's overlay disk can stall them into false timeouts.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
# Only the proxy says a request came over HTTPS, and only through the one header it overwrites (nginx sets
# X-Forwarded-Proto from its own $scheme); gunicorn's other scheme headers would be the client's to send.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
# Load Django in the master and import every view there (see when_ready), before the workers fork: they
# share that memory and answer their first request as fast as the next, instead of each spending seconds
# importing scipy and numpy on it. (A SIGHUP then restarts workers without reloading code: redeploy.)
preload_app = True


def when_ready(server: object) -> None:  # gunicorn's Arbiter (untyped), not used here
    from django.db import connections
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - imports every urls module, hence every view
    connections.close_all()  # no connection may cross the fork: each worker opens its own
