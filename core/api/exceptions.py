"""The API's errors as JSON that names the field: {"detail", "field", "code"} (+ "errors" for more).

Set in settings as REST_FRAMEWORK["EXCEPTION_HANDLER"] = "core.api.exceptions.exception_handler";
the API's views use it in any case (core.api.base.ApiMixin).

Trouble on the server's side that a retry may cure is 503: a service error whose code says so (the task
queue, the disk), and a lost database connection (Postgres restarting) rather than a bare 500 page.
(labeling.outage answers the same for the pages.) A body past DATA_UPLOAD_MAX_MEMORY_SIZE is a 413 in
this format, not Django's HTML 400 page.
"""

import logging
from typing import Any

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..errors import ServiceError

log = logging.getLogger(__name__)

UNAVAILABLE_CODES = {"queue_unavailable", "storage_unavailable"}
DATABASE_UNAVAILABLE = {
    "detail": "The database is unavailable right now; try again in a moment.",
    "field": "",
    "code": "database_unavailable",
}


def body_too_large() -> dict[str, str]:
    """The answer to a request body larger than the server reads (DATA_UPLOAD_MAX_MEMORY_SIZE)."""
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return {
        "detail": f"the request body is larger than the {limit:,} bytes the server accepts.",
        "field": "",
        "code": "too_large",
    }


def _first(detail: Any, path: str = "") -> tuple[str, str, str]:
    """(field path, message, code) of the first error in a DRF error structure."""
    if isinstance(detail, dict):
        for key, value in detail.items():
            field = key if key != "non_field_errors" else ""
            return _first(value, f"{path}.{field}" if path and field else (field or path))
    if isinstance(detail, list) and detail:
        for index, value in enumerate(detail):
            if isinstance(value, dict | list):
                return _first(value, f"{path}[{index}]")
            return _first(value, path)
    return path, str(detail), getattr(detail, "code", "invalid")


def exception_handler(exc, context):
    if isinstance(exc, ServiceError):
        unavailable = exc.code in UNAVAILABLE_CODES
        return Response(
            exc.as_dict(),
            status=status.HTTP_503_SERVICE_UNAVAILABLE if unavailable else status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(exc, RequestDataTooBig):
        return Response(body_too_large(), status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE)
    if isinstance(exc, OperationalError | InterfaceError):
        log.warning("database unavailable during %s: %s", context.get("view").__class__.__name__, exc)
        return Response(
            DATABASE_UNAVAILABLE, status=status.HTTP_503_SERVICE_UNAVAILABLE, headers={"Retry-After": "5"}
        )
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, ValidationError):
        field, message, code = _first(exc.detail)
        response.data = {
            "detail": f"{field}: {message}" if field else message,
            "field": field,
            "code": code,
            "errors": exc.detail,
        }
    elif isinstance(response.data, dict) and "detail" in response.data:
        detail = response.data["detail"]
        response.data = {"detail": str(detail), "field": "", "code": getattr(detail, "code", None) or "error"}
    return response


API_PREFIX = "/api/"


def page_not_found(request, exception):
    """The project's 404 handler (config/urls.py): a URL under the API's prefix that names no route (say
    /api/v1/tasks/0.5/, or a version that does not exist) answers our JSON error like every other API 404;
    other pages keep Django's page."""
    if request.path.startswith(API_PREFIX):
        return JsonResponse({"detail": "Not found.", "field": "", "code": "not_found"}, status=404)
    return defaults.page_not_found(request, exception)
