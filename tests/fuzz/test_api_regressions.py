"""The bugs the API fuzzing found (or that fixing them showed), one plain test each: every answer is checked
against the schema as the fuzz test checks it (tests/fuzz/openapi.py)."""

import pytest
from django.db import transaction
from django.urls import reverse
from werkzeug.test import Client

from config.wsgi import application
from tests.fuzz.openapi import api_schema, call_documented

pytestmark = pytest.mark.django_db


@pytest.fixture
def token(fuzz_world, keep_connection):
    return fuzz_world["tokens"]


@pytest.mark.parametrize("path", ["/api/v1/prompts/", "/api/v1/demonstrations/", "/api/v1/rankings/"])
def test_a_date_filter_with_an_offset_postgres_refuses_is_read_in_utc(token, path):
    # Was a 500: Postgres refuses offsets past 15:59 ("time zone displacement out of range").
    found = call_documented(
        token["researcher"], "GET", path, query={"created_after": "0813-06-04T09:16:59-21:39"}
    )
    assert found.status_code == 200 and found.json()["results"]
    too_early = call_documented(
        token["researcher"], "GET", path, query={"created_before": "0001-01-01T00:00+05:00"}
    )
    assert too_early.status_code == 400 and too_early.json()["field"] == "created_before"


@pytest.mark.parametrize("path", ["/api/v1/batches/", "/api/v1/batches/{id}/"])
def test_a_labeler_gets_the_batch_the_schema_documents_for_labelers(token, fuzz_world, path):
    # Was a schema mismatch: the schema promised every role the batch admins' fields.
    response = call_documented(token["labeler"], "GET", path, path_parameters={"id": fuzz_world["batch"].pk})
    batch = response.json()["results"][0] if path == "/api/v1/batches/" else response.json()
    assert response.status_code == 200 and "labelers" not in batch


@pytest.mark.parametrize(
    "path, key",
    [
        ("/api/v1/prompts/{id}/", "prompt"),
        ("/api/v1/datasets/{id}/", "snapshot"),
        ("/api/v1/batches/{id}/", "batch"),
    ],
)
def test_objects_nobody_created_are_documented(token, fuzz_world, path, key):
    # Was a schema mismatch: author and created_by are null for imported prompts and scheduled exports.
    response = call_documented(token["researcher"], "GET", path, path_parameters={"id": fuzz_world[key].pk})
    assert response.status_code == 200 and None in (
        response.json().get("author"),
        response.json().get("created_by"),
    )


@pytest.mark.parametrize(
    "path", ["/api/v1/tasks/0.5/", "/api/v1/quality/labelers/x/", "/api/v1/training-runs/1.5/"]
)
def test_a_path_under_the_api_that_names_no_route_is_a_json_404(token, path):
    # Was Django's HTML 404 page.
    response = Client(application).get(path, headers={"Authorization": f"Token {token['researcher']}"})
    assert response.status_code == 404 and response.json == {
        "detail": "Not found.",
        "field": "",
        "code": "not_found",
    }
    assert Client(application).get("/no/such/page/").content_type.startswith("text/html")


def test_a_username_with_a_nul_character_matches_nobody(token, fuzz_world):
    # Was a 500: Postgres refuses NUL in the lookup ("PostgreSQL text fields cannot contain NUL").
    created = call_documented(
        token["admin"],
        "POST",
        "/api/v1/batches/",
        body={"name": "x", "kind": "prompt_writing", "task_count": 1, "labelers": ["lab\x001"]},
        media_type="application/json",
    )
    assert created.status_code == 400 and created.json()["field"] == "labelers"
    added = call_documented(
        token["admin"],
        "POST",
        "/api/v1/batches/{id}/labelers/",
        path_parameters={"id": fuzz_world["batch"].pk},
        body={"add": ["\x00"]},
        media_type="application/json",
    )
    assert added.status_code == 400 and added.json()["field"] == "add"


@pytest.mark.parametrize("bad", ["a\x00b", "\ud800"])
def test_stored_json_with_a_nul_or_a_lone_surrogate_is_refused(token, bad):
    # Was a 500: jsonb refuses \u0000, and a lone surrogate cannot be encoded.
    cases = [
        (
            "admin",
            "/api/v1/prompts/",
            {"text": "A new prompt.", "category": "other", "metadata": {"k": bad}},
            "metadata",
        ),
        ("researcher", "/api/v1/rounds/", {"stage_config": {"sft": {bad: 1}}}, "stage_config"),
        ("researcher", "/api/v1/datasets/", {"kind": "rm_pairs", "filters": {"labelers": [bad]}}, "filters"),
    ]
    for role, path, body, field in cases:
        response = call_documented(token[role], "POST", path, body=body, media_type="application/json")
        assert response.status_code == 400 and response.json()["field"] == field, path


@pytest.mark.parametrize(
    "body, message",
    [("[" * 50_000 + "]" * 50_000, "nested too deeply"), ('{"metadata": {"n": 1e999}}', "out of range")],
)
def test_json_nested_past_the_recursion_limit_or_beyond_a_double_is_a_400(token, body, message):
    # Was a 500: RecursionError in the parser; 1e999 reads as Infinity, which jsonb refuses.
    response = call_documented(
        token["admin"], "POST", "/api/v1/prompts/", body=body.encode(), media_type="application/json"
    )
    assert response.status_code == 400 and message in response.json()["detail"]


@pytest.mark.parametrize("path", ["/api/v1/auth/token/", "/api/v1/rounds/"])
def test_json_nested_past_the_recursion_limit_is_a_400_everywhere(token, path):
    deep = ("[" * 50_000 + "]" * 50_000).encode()
    response = call_documented(token["researcher"], "POST", path, body=deep, media_type="application/json")
    assert response.status_code == 400 and "nested too deeply" in response.json()["detail"]


def test_dataset_filters_take_any_offset_and_refuse_days_that_do_not_exist(token):
    def export(filters):
        return call_documented(
            token["researcher"],
            "POST",
            "/api/v1/datasets/",
            body={"kind": "rm_pairs", "filters": filters},
            media_type="application/json",
        )

    # Was a 500 (Postgres refuses the offset); moments are stored in UTC.
    far = export({"created_after": "2024-01-01T00:00:00-21:39"})
    filters = far.json()["params"]["filters"]  # the export runs as a job; it records the filters checked
    assert far.status_code == 202 and filters["created_after"] == "2024-01-01T21:39:00+00:00"
    # Was a 500: ValueError from a well-formed date that does not exist.
    feb_30 = export({"created_after": "2024-02-30"})
    assert feb_30.status_code == 400 and feb_30.json()["field"] == "created_after"
    # Was refused: moments in two offsets were compared as text (10:00+05:00 is before 06:00Z).
    assert (
        export(
            {"created_after": "2024-01-01T10:00:00+05:00", "created_before": "2024-01-01T06:00:00Z"}
        ).status_code
        == 202
    )


def test_a_prompt_limit_beyond_a_bigint_limits_nothing(token):
    # Was a 500: Postgres's LIMIT is a bigint.
    response = call_documented(
        token["admin"],
        "POST",
        "/api/v1/batches/",
        body={"name": "all of them", "kind": "demonstration", "prompt_filters": {"limit": 10**30}},
        media_type="application/json",
    )
    assert response.status_code == 201 and response.json()["task_count"] > 0


def test_seconds_spent_beyond_what_the_column_holds_are_refused(token, fuzz_world):
    # Was a 500: "integer out of range".
    ids = list(fuzz_world["t2"].task_completions.values_list("completion_id", flat=True))
    response = call_documented(
        token["labeler"],
        "POST",
        "/api/v1/assignments/{id}/submit/",
        path_parameters={"id": fuzz_world["live"].pk},
        body={"tiers": [ids], "seconds_spent": 2**31},
        media_type="application/json",
    )
    assert response.status_code == 400 and response.json()["field"] == "seconds_spent"


def test_a_body_without_a_media_type_is_a_documented_415(token):
    # Was an undocumented status code.
    response = Client(application).post(
        "/api/v1/prompts/", data=b'{"text": "x"}', headers={"Authorization": f"Token {token['admin']}"}
    )
    assert response.status_code == 415
    api_schema["/api/v1/prompts/"]["POST"].validate_response(response)


@pytest.mark.parametrize(
    "body, message",
    [
        (b'{"draft": {"text": "a\\u0000b"}}', "NUL character"),
        (b'{"draft": {"likert": NaN}}', "NaN"),
        (b'{"draft": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", "nested too deeply"),
    ],
)
def test_a_workspace_draft_the_database_cannot_store_is_a_400(
    client, fuzz_world, keep_connection, body, message
):
    # The workspace's JSON endpoint (not under /api/v1/, found alongside): each was a 500.
    client.force_login(fuzz_world["users"]["labeler"])
    with transaction.atomic():
        response = client.post(
            reverse("workspace-draft", args=[fuzz_world["live"].pk]), body, content_type="application/json"
        )
        transaction.set_rollback(True)
    assert response.status_code == 400 and message in response.json()["detail"]
