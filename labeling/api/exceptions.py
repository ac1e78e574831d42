"""The API's errors as JSON that names the field: {"detail", "field", "code"} (+ "errors" for more).

Set in settings as REST_FRAMEWORK["EXCEPTION_HANDLER"] = "labeling.api.exceptions.exception_handler";
the API's views use it in any case (labeling.api.base.ApiMixin).
"""

from rest_framework import status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from ..errors import ServiceError


def _first(detail, path: str = "") -> tuple[str, str, str]:
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
        return Response(exc.as_dict(), status=status.HTTP_400_BAD_REQUEST)
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
