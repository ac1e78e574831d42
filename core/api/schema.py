"""The OpenAPI schema at /api/v1/schema/: drf-spectacular's, plus the errors every operation can answer.

Every error is our JSON error body (core.api.exceptions): 401, 403 and 503 anywhere, 404 where a path
names an object or a list takes a cursor, 400 wherever the request carries input or changes something, 415
where it has a body. A view declares any other error it gives (say 409) with @extend_schema and a
description; the body is added here.

A response whose shape depends on who asks is documented as anyOf its shapes (an AnyOf serializer).

API tokens are django-rest-knox's, documented by drf-spectacular's knox scheme (knoxApiToken), which
also covers our subclass (core.api.authentication): one token scheme in the schema.
"""

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.generators import SchemaGenerator
from rest_framework import serializers

ERROR_COMPONENT = "Error"
ERROR_SCHEMA = {
    "type": "object",
    "description": "An error, naming the input at fault.",
    "properties": {
        "detail": {"type": "string", "description": "What went wrong, for a person to read."},
        "field": {"type": "string", "description": "The input at fault ('' when none is)."},
        "code": {"type": "string", "description": "Machine-readable, e.g. invalid, not_found, bad_file."},
        "errors": {
            "description": "Validation errors: every field's messages. A rejected import: a list of "
            "{line, field, message}."
        },
        "error_count": {"type": "integer", "description": "A rejected import: how many errors in all."},
    },
    "required": ["detail", "field", "code"],
}
PAGING = {"cursor", "page_size"}


def error_statuses(method: str, operation: dict) -> dict[str, str]:
    """The errors an operation can answer, by the shape of its request."""
    params = {(p["in"], p["name"]) for p in operation.get("parameters", [])}
    statuses = {
        "401": "Not signed in, or an unknown token.",
        "403": "Your role does not allow this (or a session write without its CSRF token).",
        "503": "The database, the task queue or file storage is unavailable; nothing was done, try again.",
    }
    filters = {name for where, name in params if where == "query"} - PAGING
    if method != "get" or "requestBody" in operation or filters:
        statuses["400"] = "The input is invalid, or the rules refuse the request; 'field' names the input."
    if "requestBody" in operation:
        statuses["415"] = "The body's media type is missing, or not one this operation reads."
    if any(where == "path" for where, _ in params) or ("query", "cursor") in params:
        statuses["404"] = "No such object (or not one you may see), or a stale list cursor."
    return statuses


class ApiSchemaGenerator(SchemaGenerator):
    def get_schema(self, request=None, public=False):
        schema = super().get_schema(request=request, public=public)
        error = {"application/json": {"schema": {"$ref": f"#/components/schemas/{ERROR_COMPONENT}"}}}
        schema.setdefault("components", {}).setdefault("schemas", {})[ERROR_COMPONENT] = ERROR_SCHEMA
        for operations in schema["paths"].values():
            for method, operation in operations.items():
                responses = operation["responses"]
                for status, description in error_statuses(method, operation).items():
                    responses.setdefault(status, {"description": description})
                for status, response in responses.items():
                    if status[0] in "45" and "content" not in response:
                        response["content"] = error
        return schema


class AnyOf(serializers.Serializer):
    """Schema only: a response that is one of `shapes` (serializers), depending on who asks."""

    shapes: tuple[type[serializers.Serializer], ...] = ()


class AnyOfExtension(OpenApiSerializerExtension):
    target_class = AnyOf
    match_subclasses = True

    def map_serializer(self, auto_schema, direction):
        return {"anyOf": [auto_schema.resolve_serializer(s, direction).ref for s in self.target.shapes]}


class TokenScheme(KnoxTokenScheme):
    match_subclasses = True
    priority = 1
