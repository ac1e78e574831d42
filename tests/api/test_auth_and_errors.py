"""Token and session auth, CSRF, and errors as JSON naming the field."""

import pytest
from rest_framework.test import APIClient

from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def test_a_script_gets_a_token_and_uses_it(world):
    client = APIClient()
    denied = client.post("/api/v1/auth/token/", {"username": "sci", "password": "wrong"}, format="json")
    assert denied.status_code == 400
    token = client.post(
        "/api/v1/auth/token/", {"username": "sci", "password": "correct-horse-battery"}, format="json"
    ).data["token"]
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    assert client.get("/api/v1/datasets/").status_code == 200


def test_session_writes_need_the_csrf_token(world):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world["users"]["admin"])
    response = client.post(
        "/api/v1/batches/", {"name": "x", "kind": "prompt_writing", "task_count": 1}, format="json"
    )
    assert response.status_code == 403 and "CSRF" in response.data["detail"]


def test_service_errors_name_the_field(client_as):
    response = client_as("admin").post(
        "/api/v1/batches/",
        {"name": "x", "kind": "prompt_writing", "task_count": 1, "overlap": 0},
        format="json",
    )
    assert response.status_code == 400
    assert response.data == {"detail": response.data["detail"], "field": "overlap", "code": "invalid"}
    assert "overlap" in response.data["detail"]


def test_validation_errors_name_the_field_too(client_as):
    response = client_as("admin").post("/api/v1/batches/", {"name": "x", "kind": "poetry"}, format="json")
    assert response.status_code == 400
    assert response.data["field"] == "kind" and response.data["code"] == "invalid_choice"
    assert response.data["detail"].startswith("kind: ")
    nested = client_as("admin").post(
        "/api/v1/batches/",
        {"name": "x", "kind": "demonstration", "prompt_filters": {"split": ["nowhere"]}},
        format="json",
    )
    assert nested.data["field"] == "prompt_filters.split"


def test_not_found_and_forbidden_are_json_with_a_code(client_as):
    missing = client_as("researcher").get("/api/v1/batches/999999/")
    assert missing.status_code == 404 and missing.data["code"] == "not_found"
    forbidden = client_as("labeler").get("/api/v1/datasets/")
    assert forbidden.status_code == 403 and forbidden.data["code"] == "permission_denied"


def test_schema_is_openapi_3_and_lists_the_resources(client_as):
    response = client_as("researcher").get("/api/v1/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in (
        "/api/v1/prompts/",
        "/api/v1/batches/{id}/progress/",
        "/api/v1/tasks/next/{batch_id}/",
        "/api/v1/assignments/{id}/submit/",
        "/api/v1/datasets/{id}/download/",
        "/api/v1/imports/prompts/",
        "/api/v1/model-versions/",
        "/api/v1/training-runs/",
        "/api/v1/auth/token/",
    ):
        assert path in schema["paths"], path


def test_swagger_ui_is_served_from_our_own_static_files(client_as):
    html = client_as("researcher").get("/api/v1/docs/").content.decode()
    assert "swagger-ui" in html and "cdn" not in html.lower() and "/static/drf_spectacular_sidecar/" in html


def test_lists_are_cursor_paginated(client_as):
    client = client_as("researcher")
    first = client.get("/api/v1/tasks/?page_size=2").data
    assert len(first["results"]) == 2 and "cursor=" in first["next"]
    second = client.get(first["next"]).data
    assert {t["id"] for t in first["results"]}.isdisjoint({t["id"] for t in second["results"]})


def test_filters_narrow_lists(world, client_as):
    client = client_as("researcher")
    assert [r["id"] for r in client.get("/api/v1/rankings/", {"labeler": "lab2"}).data["results"]] == [
        world["other_ranking"].pk
    ]
    tasks = client.get("/api/v1/tasks/", {"batch": world["other_batch"].pk}).data["results"]
    assert [t["id"] for t in tasks] == [world["other_task"].pk]
    assert client.get("/api/v1/prompts/", {"category": "extract"}).data["results"] == []


def test_a_user_with_no_role_is_refused(db):
    client = APIClient()
    client.force_authenticate(UserFactory(username="nobody"))
    assert client.get("/api/v1/tasks/").status_code == 403
