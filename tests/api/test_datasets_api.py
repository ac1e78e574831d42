"""Dataset snapshots and imports over the API."""

import hashlib
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from labeling.models import Prompt
from training.models import ModelVersionSnapshot

pytestmark = pytest.mark.django_db


def test_export_then_download_the_same_bytes(world, client_as):
    client = client_as("researcher")
    created = client.post(
        "/api/datasets/",
        {"kind": "rm_rankings", "filters": {"batches": [world["batch"].pk], "rankings": "consensus"}},
        format="json",
    )
    assert created.status_code == 201 and created.data["row_count"] == 1
    download = client.get(created.data["download_url"])
    body = b"".join(download.streaming_content)
    assert hashlib.sha256(body).hexdigest() == created.data["sha256"] == download["X-Checksum-SHA256"]
    assert json.loads(body)["task_id"] == world["t1"].pk
    listed = client.get("/api/datasets/", {"kind": "rm_rankings"}).data["results"]
    assert [s["id"] for s in listed] == [created.data["id"]]


def test_export_a_conversational_snapshot_and_see_its_format(world, client_as):
    client = client_as("researcher")
    created = client.post("/api/datasets/", {"kind": "sft", "format": "conversational"}, format="json")
    assert created.status_code == 201 and created.data["format"] == "conversational"
    download = client.get(created.data["download_url"])
    assert "sft-conversational-" in download["Content-Disposition"]
    rows = [json.loads(line) for line in b"".join(download.streaming_content).decode().splitlines()]
    assert rows and all(r["prompt"][0]["role"] == "user" for r in rows)
    assert all(
        r["completion"] == [{"content": r["completion"][0]["content"], "role": "assistant"}] for r in rows
    )
    detail = client.get(f"/api/datasets/{created.data['id']}/").data
    listed = {s["id"]: s["format"] for s in client.get("/api/datasets/").data["results"]}
    assert detail["format"] == "conversational" and listed[world["snapshot"].pk] == "standard"


def test_an_unknown_format_is_a_400_naming_the_field(world, client_as):
    bad = client_as("researcher").post("/api/datasets/", {"kind": "sft", "format": "chatml"}, format="json")
    assert bad.status_code == 400 and bad.data["field"] == "format"
    assert client_as("researcher").get("/api/datasets/").data["results"][0]["id"] == world["snapshot"].pk


def test_bad_filters_and_protected_deletes_are_400s(world, client_as):
    client = client_as("researcher")
    bad = client.post("/api/datasets/", {"kind": "sft", "filters": {"split": "everything"}}, format="json")
    assert bad.status_code == 400 and bad.data["field"] == "split"
    ModelVersionSnapshot.objects.create(model_version=world["model"], snapshot=world["snapshot"])
    refused = client.delete(f"/api/datasets/{world['snapshot'].pk}/")
    assert (
        refused.status_code == 400
        and refused.data["code"] == "protected"
        and "base" in refused.data["detail"]
    )


def test_import_prompts_over_the_api(world, client_as):
    data = b"text,category\nHow do I bake bread?,open_qa\nWrite a limerick,generation\n"
    response = client_as("admin").post(
        "/api/imports/prompts/",
        {"file": SimpleUploadedFile("prompts.csv", data), "batch_name": "demos", "labelers": ["lab1"]},
        format="multipart",
    )
    assert response.status_code == 201 and response.data["created"] == 2 and response.data["batch"]


def test_a_bad_file_is_a_400_listing_lines_and_fields(world, client_as):
    data = b'{"text": "fine", "category": "chat"}\n{"text": "no category"}\n'
    response = client_as("admin").post(
        "/api/imports/prompts/", {"file": SimpleUploadedFile("p.jsonl", data)}, format="multipart"
    )
    assert response.status_code == 400 and response.data["code"] == "bad_file"
    assert response.data["errors"] == [
        {"line": 2, "field": "category", "message": "is required and must not be empty"}
    ]
    assert not Prompt.objects.filter(text="fine").exists()


def test_import_completions_makes_a_batch(world, client_as):
    lines = b'{"prompt": "Name a colour", "completions": ["red", "blue", "green"], "model": "gpt-x"}\n'
    response = client_as("admin").post(
        "/api/imports/completions/",
        {
            "file": SimpleUploadedFile("c.jsonl", lines),
            "batch_name": "colours",
            "kind": "evaluation",
            "overlap": 2,
        },
        format="multipart",
    )
    assert response.status_code == 201 and response.data["tasks_created"] == 1
    batch = client_as("admin").get(f"/api/batches/{response.data['batch']}/").data
    assert (batch["kind"], batch["overlap"], batch["name"]) == ("evaluation", 2, "colours")
