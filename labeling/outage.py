"""The pages during a database outage: 503 with Retry-After, not a bare 500.

The API answers its own JSON 503 (core.api.exceptions); this middleware does the same for every other
view that fails on a lost or refused database connection (Postgres restarting, a failover): JSON for the
page scripts' requests (the draft saver), a short "try again" page otherwise. The page is rendered without
the request, so it reads nothing from the database (no session, no user, no messages).
"""

import logging
from collections.abc import Callable

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string

from core.api.exceptions import DATABASE_UNAVAILABLE

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5


def wants_json(request: HttpRequest) -> bool:
    """A script's request (it sends JSON, or asks for JSON first) rather than a browser's page load."""
    accept = request.headers.get("Accept", "")
    return request.content_type == "application/json" or accept.startswith("application/json")


def database_unavailable(request: HttpRequest) -> HttpResponse:
    if wants_json(request):
        response: HttpResponse = JsonResponse(DATABASE_UNAVAILABLE, status=503)
    else:
        page = render_to_string(
            "database_unavailable.html",
            {"sent": request.method not in ("GET", "HEAD"), "path": request.get_full_path()},
        )
        response = HttpResponse(page, status=503)
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


class DatabaseOutageMiddleware:
    """Turns a view's lost database connection into database_unavailable's 503."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log.warning("database unavailable during %s %s: %s", request.method, request.path, exception)
        return database_unavailable(request)
