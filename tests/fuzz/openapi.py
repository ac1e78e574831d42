"""Our OpenAPI schema as schemathesis sees it, and sending one request in-process the way the fuzz test
does: with a role's token, to the WSGI app, in a savepoint rolled back after it, checked against the schema
(no 5xx; status code, content type and body as documented)."""

import json

import schemathesis
from django.db import transaction
from drf_spectacular.renderers import OpenApiJsonRenderer
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from config.wsgi import application
from core.api.schema import ApiSchemaGenerator

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _schema() -> dict:
    generated = ApiSchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(generated))


api_schema = schemathesis.openapi.from_dict(_schema())


def send(case, token: str):
    """The response to this case from the app, as the token's user; the database is left as it was."""
    with transaction.atomic():
        response = case.call(app=application, headers={"Authorization": f"Token {token}"})
        transaction.set_rollback(True)
    return response


def call_documented(token: str, method: str, path: str, **case):
    """Send one request (path as in the schema, with path_parameters, query, body, media_type) and fail
    unless the answer is documented; returns it (status_code, json())."""
    case = api_schema[path][method].Case(**case)
    response = send(case, token)
    case.validate_response(response, checks=CHECKS)
    return response
