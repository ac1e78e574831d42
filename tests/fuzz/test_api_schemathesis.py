"""Schemathesis against our OpenAPI schema (/api/v1/schema/), as each role, over a small world of data.

Every operation gets schemathesis's coverage phase (boundary and invalid values of each parameter and body
field) and its fuzzing phase (random requests, valid and invalid), sent in-process to the WSGI app with the
role's token; half the path ids point at objects that exist (tests/fuzz/world.py). Checks: no 5xx, and
every response as documented (status code, content type, body). Where a view's role rule refuses the role
outright, the answer is the same 403 whatever the input, so that role skips the coverage phase there.
Each request runs in a savepoint rolled back after it: every example starts from the same world.
FUZZ_EXAMPLES=100 (default 20 per operation and role) makes a deeper run.
"""

import os

import pytest
from django.urls import Resolver404, resolve
from hypothesis import HealthCheck, settings
from schemathesis.generation.meta import TestPhase

from tests.fuzz.openapi import CHECKS, api_schema, send

pytestmark = pytest.mark.django_db

ROLES = ("labeler", "admin", "researcher")
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_EXAMPLES", "20"))  # fuzzing phase; more for a deep run


def _point_at_world(case, world: dict) -> None:
    """Make path ids mean the same whatever the database's sequences: a whole number n that is even becomes
    the world's (n / 2)th object of that resource (so the coverage phase's id 0 is its lead object), an odd
    one an id past all of them (no such object). Other values (-1, 0.5, "abc") are left as generated."""
    segments = case.path.strip("/").split("/")
    for name, value in (case.path_parameters or {}).items():
        if isinstance(value, bool) or not str(value).isdigit():
            continue
        resource = segments[segments.index(f"{{{name}}}") - 1]
        kind = {"batch_id": "batches", "user_id": "users"}.get(name, resource)
        if kind not in world["ids"]:
            continue  # not an object's id (an API token's prefix)
        ids = world["ids"][kind]
        n = int(value)
        case.path_parameters[name] = max(ids) + 1 + n // 2 if n % 2 else ids[n // 2 % len(ids)]


def _refused_whatever_the_input(case, user) -> bool:
    """Whether the view's role rule (core.permissions.ByRole) refuses this user the operation: it looks at
    the action alone, so every input gets the same 403 and the coverage phase need not try them all."""
    try:
        match = resolve(case.formatted_path)
    except Resolver404:
        return False
    roles = getattr(match.func.cls, "roles", None) if hasattr(match.func, "cls") else None
    if roles is None:
        return False
    actions = getattr(match.func, "actions", None) or {}
    rule = roles.get(actions.get(case.method.lower(), case.method.lower()))
    return rule is None or not rule(user)


@pytest.mark.parametrize("role", ROLES)
@api_schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
def test_api_answers_every_request_as_documented(case, role, fuzz_world, keep_connection, tally):
    _point_at_world(case, fuzz_world)
    user = fuzz_world["users"][role]
    if case.meta.phase.name == TestPhase.COVERAGE and _refused_whatever_the_input(case, user):
        return
    response = send(case, fuzz_world["tokens"][role])
    tally[role, f"{response.status_code // 100}xx"] += 1
    case.validate_response(response, checks=CHECKS)
